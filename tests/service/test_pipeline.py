"""The child process that runs the worker and the dispatcher of `opsroute serve`."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from router.sandbox.servicenow import FakeServiceNow
from router.service.metrics import ServiceMetrics
from router.service.pipeline import MetricsRelay, PipeWake, apply_updates

from .serving import ServeProcess
from .support import encode, incident, signed, wait_for
from .test_dispatcher import HELPDESK_TARGETS
from .test_serve import serve_env


@pytest.fixture
def fake_servicenow() -> Iterator[FakeServiceNow]:
    with FakeServiceNow(lifetime_seconds=300) as fake:
        for name in HELPDESK_TARGETS:
            fake.add_group(name)
        yield fake


def test_relayed_metric_updates_are_counted_by_the_parent() -> None:
    relay = MetricsRelay()
    metrics = relay.as_metrics()
    metrics.decisions.labels(action="auto_route").inc()
    metrics.decisions.labels(action="auto_route").inc()
    metrics.writeback_failures.labels(system="jira", outcome="retry").inc(3)
    metrics.decision_latency.observe(0.25)
    parent = ServiceMetrics()

    apply_updates(parent, relay.drain())

    def sample(name: str, **labels: str) -> float | None:
        return parent.registry.get_sample_value(name, labels)

    assert sample("opsroute_decisions_total", action="auto_route") == 2.0
    assert (
        sample("opsroute_writeback_failures_total", system="jira", outcome="retry")
        == 3.0
    )
    assert sample("opsroute_decision_latency_seconds_count") == 1.0
    assert sample("opsroute_decision_latency_seconds_sum") == 0.25
    assert relay.drain() == []


def test_relay_keeps_updates_recorded_after_a_drain() -> None:
    relay = MetricsRelay()
    relay.as_metrics().decisions.labels(action="review").inc()
    first = relay.drain()
    relay.as_metrics().decisions.labels(action="review").inc()

    assert len(first) == 1
    assert len(relay.drain()) == 1


def _pipeline(served: ServeProcess) -> dict[str, object]:
    body = httpx.get(f"{served.url}/readyz", timeout=5.0).json()
    pipeline: dict[str, object] = body["checks"]["pipeline"]
    return pipeline


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child stays a zombie until its parent waits for it.
    status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return status != "Z"


def test_idle_pipeline_writes_back_without_waiting_for_polls(
    model_database: str, tmp_path: Path, fake_servicenow: FakeServiceNow
) -> None:
    env = serve_env(model_database, tmp_path, fake_servicenow) | {
        # Only the wake-ups can make this fast: the polls are 30 s apart.
        "OPSROUTE_WORKER_POLL_SECONDS": "30",
        "OPSROUTE_DISPATCHER_POLL_SECONDS": "30",
    }
    record = incident(1)
    fake_servicenow.add_record("incident", dict(record))
    with ServeProcess(env=env, log_path=tmp_path / "serve.log") as served:
        served.wait_ready()
        wait_for(lambda: _pipeline(served)["model_version"] is not None, timeout=30)
        # The worker's first claim found nothing, so it now waits for a wake-up.
        time.sleep(0.5)
        body = encode(record)
        sent = time.monotonic()
        response = httpx.post(
            f"{served.url}/webhooks/servicenow", content=body, headers=signed(body)
        )
        wait_for(lambda: bool(fake_servicenow.writes()), timeout=10)
        elapsed = time.monotonic() - sent

    assert response.status_code == 200
    assert elapsed < 5.0
    [write] = fake_servicenow.writes()
    assert record["sys_id"] in write.path


def test_killed_pipeline_is_restarted_and_routing_goes_on(
    model_database: str, tmp_path: Path, fake_servicenow: FakeServiceNow
) -> None:
    env = serve_env(model_database, tmp_path, fake_servicenow)
    records = [incident(n) for n in (1, 2)]
    for record in records:
        fake_servicenow.add_record("incident", dict(record))
    with ServeProcess(env=env, log_path=tmp_path / "serve.log") as served:
        served.wait_ready()
        first_pid = int(str(_pipeline(served)["pid"]))
        os.kill(first_pid, signal.SIGKILL)
        wait_for(lambda: _pipeline(served)["restarts"] == 1, timeout=20)
        wait_for(lambda: _pipeline(served)["ok"] is True, timeout=20)
        second = _pipeline(served)
        for record in records:
            body = encode(record)
            httpx.post(
                f"{served.url}/webhooks/servicenow", content=body, headers=signed(body)
            )
        wait_for(lambda: len(fake_servicenow.writes()) == 2, timeout=30)

    assert second["pid"] != first_pid
    written = sorted(call.path.rsplit("/", 1)[-1] for call in fake_servicenow.writes())
    assert written == sorted(record["sys_id"] for record in records)


def test_kill_9_of_serve_takes_its_pipeline_along(
    model_database: str, tmp_path: Path
) -> None:
    env = serve_env(model_database, tmp_path)
    with ServeProcess(env=env, log_path=tmp_path / "serve.log") as served:
        served.wait_ready()
        pid = int(str(_pipeline(served)["pid"]))
        served.kill()
        wait_for(lambda: not _alive(pid), timeout=10)

    assert not _alive(pid)


def test_pipe_wake_wakes_a_waiter_once_until_cleared() -> None:
    wake = PipeWake(multiprocessing.get_context("spawn"))

    idle = wake.wait(0.05)
    wake.set()
    wake.set()
    woken = wake.wait(1.0)
    wake.clear()
    cleared = wake.wait(0.05)

    assert idle is False
    assert woken is True
    assert cleared is False


def test_serve_stops_without_leaked_semaphore_warnings(
    model_database: str, tmp_path: Path
) -> None:
    env = serve_env(model_database, tmp_path)
    with ServeProcess(env=env, log_path=tmp_path / "serve.log") as served:
        served.wait_ready()
        served.stop()
    log = (tmp_path / "serve.log").read_text()

    assert "Application shutdown complete" in log
    assert "leaked semaphore" not in log
