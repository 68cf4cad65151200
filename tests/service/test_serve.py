"""`opsroute serve` as a real process: start-up, shutdown, and kill -9 mid-burst."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from router.sandbox.servicenow import FakeServiceNow
from router.store.models import (
    decisions,
    inbox_events,
    job_runs,
    outbox_actions,
    tickets,
)

from .serving import ServeProcess, auto_route_mappings_dir
from .support import (
    SNOW_PASSWORD,
    SNOW_USER,
    WEBHOOK_SECRET,
    count_rows,
    encode,
    incident,
    signed,
    wait_for,
)
from .test_dispatcher import HELPDESK_TARGETS

EVENTS = 60
KILL_ROUNDS = 3


@pytest.fixture
def fake_servicenow() -> Iterator[FakeServiceNow]:
    with FakeServiceNow(lifetime_seconds=300) as fake:
        for name in HELPDESK_TARGETS:
            fake.add_group(name)
        yield fake


def serve_env(
    database_url: str, tmp_path: Path, fake: FakeServiceNow | None = None
) -> dict[str, str]:
    env = {
        "OPSROUTE_DATABASE_URL": database_url,
        "OPSROUTE_MODEL_CACHE_DIR": str(tmp_path / "cache"),
        "OPSROUTE_MAPPINGS_DIR": str(auto_route_mappings_dir(tmp_path / "mappings")),
        "OPSROUTE_SERVICENOW_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "OPSROUTE_WORKER_POLL_SECONDS": "0.05",
        "OPSROUTE_DISPATCHER_POLL_SECONDS": "0.05",
        # A killed dispatcher's claims come due again after this long.
        "OPSROUTE_DISPATCH_CLAIM_SECONDS": "2",
        "OPSROUTE_DISPATCH_BACKOFF_BASE_SECONDS": "0.2",
    }
    if fake is not None:
        env |= {
            "OPSROUTE_SERVICENOW_INSTANCE": fake.url,
            "OPSROUTE_SERVICENOW_USER": SNOW_USER,
            "OPSROUTE_SERVICENOW_PASSWORD": SNOW_PASSWORD,
        }
    return env


def test_serve_responds_and_stops_cleanly(
    model_database: str, tmp_path: Path, store: sessionmaker[Session]
) -> None:
    env = serve_env(model_database, tmp_path)
    with ServeProcess(env=env, log_path=tmp_path / "serve.log") as served:
        seconds = served.wait_healthy()
        served.wait_ready()
        body = encode(incident(1))
        response = httpx.post(
            f"{served.url}/webhooks/servicenow", content=body, headers=signed(body)
        )
        missing = httpx.post(f"{served.url}/webhooks/jira", content=b"{}")
        unknown = httpx.get(f"{served.url}/nothing")
        exit_code = served.stop()
    log = (tmp_path / "serve.log").read_text()

    assert seconds < 15.0
    assert response.status_code == 200
    assert missing.status_code == 503
    assert "OPSROUTE_JIRA_WEBHOOK_SECRET" in missing.json()["error"]
    assert unknown.status_code == 404
    # uvicorn re-raises the signal it stopped on once shutdown is complete.
    assert exit_code in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log
    assert WEBHOOK_SECRET not in log
    assert "level=info" in log
    with store() as session:
        assert count_rows(session, "inbox_events") == 1


class Sender:
    """Post each incident until it is acknowledged, as a vendor retries."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.acked: set[str] = set()
        self._lock = threading.Lock()

    def send_all(self, url: str, *, stop: threading.Event) -> None:
        with httpx.Client(timeout=5.0) as client, ThreadPoolExecutor(8) as pool:
            for record in self.records:
                pool.submit(self._send, client, url, record, stop)

    def _send(
        self,
        client: httpx.Client,
        url: str,
        record: dict[str, Any],
        stop: threading.Event,
    ) -> None:
        if stop.is_set():
            return
        body = encode(record)
        try:
            response = client.post(
                f"{url}/webhooks/servicenow", content=body, headers=signed(body)
            )
        except httpx.TransportError:
            return
        if response.status_code == 200:
            with self._lock:
                self.acked.add(record["sys_id"])


def stored_keys(store: sessionmaker[Session]) -> set[str]:
    with store() as session:
        return set(session.execute(select(inbox_events.c.record_key)).scalars())


def settled(store: sessionmaker[Session]) -> bool:
    with store() as session:
        pending = session.execute(
            select(func.count())
            .select_from(inbox_events)
            .where(inbox_events.c.status == "pending")
        ).scalar_one()
        open_actions = session.execute(
            select(func.count())
            .select_from(outbox_actions)
            .where(outbox_actions.c.status.in_(("pending", "in_flight")))
        ).scalar_one()
    return pending == 0 and open_actions == 0


def test_kill_9_mid_burst_keeps_effects_once(
    model_database: str,
    tmp_path: Path,
    store: sessionmaker[Session],
    fake_servicenow: FakeServiceNow,
) -> None:
    records = [
        fake_servicenow.add_record("incident", incident(number))
        for number in range(1, EVENTS + 1)
    ]
    sender = Sender(records)
    env = serve_env(model_database, tmp_path, fake_servicenow)
    rng = random.Random(7)
    lost: list[set[str]] = []

    for round_number in range(KILL_ROUNDS):
        served = ServeProcess(env=env, log_path=tmp_path / f"serve-{round_number}.log")
        served.start()
        served.wait_ready()
        stop = threading.Event()
        burst = threading.Thread(
            target=sender.send_all, args=(served.url,), kwargs={"stop": stop}
        )
        burst.start()
        time.sleep(rng.uniform(0.05, 0.6))
        served.kill()
        stop.set()
        burst.join(30)
        lost.append(sender.acked - stored_keys(store))

    with ServeProcess(env=env, log_path=tmp_path / "serve-final.log") as served:
        served.wait_ready()
        sender.send_all(served.url, stop=threading.Event())
        assert wait_for(lambda: settled(store), timeout=60, interval=0.2)

    with store() as session:
        decided = session.execute(
            select(tickets.c.key, func.count(decisions.c.id))
            .join(decisions, decisions.c.ticket_id == tickets.c.id)
            .group_by(tickets.c.key)
        ).all()
        dead = count_rows(session, "outbox_actions") - len(
            session.execute(
                select(outbox_actions.c.id).where(outbox_actions.c.status == "done")
            ).all()
        )
    notes = [len(fake_servicenow.journal(record["sys_id"])) for record in records]
    assert lost == [set()] * KILL_ROUNDS
    assert sender.acked == {record["sys_id"] for record in records}
    assert len(decided) == EVENTS
    assert {count for _, count in decided} == {1}
    assert dead == 0
    assert notes == [1] * EVENTS


def test_replicas_share_burst_without_doubles(
    model_database: str,
    tmp_path: Path,
    store: sessionmaker[Session],
    fake_servicenow: FakeServiceNow,
) -> None:
    if not model_database.startswith("postgresql"):
        pytest.skip("Several replicas share one database on PostgreSQL only.")
    records = [
        fake_servicenow.add_record("incident", incident(number))
        for number in range(1, EVENTS + 1)
    ]
    env = serve_env(model_database, tmp_path, fake_servicenow) | {
        "OPSROUTE_REPORT_INTERVAL_SECONDS": "1",
        "OPSROUTE_WORKER_BATCH_SIZE": "5",
    }
    replicas = [
        ServeProcess(
            env=env | {"OPSROUTE_REPLICA_ID": f"replica-{name}"},
            log_path=tmp_path / f"serve-{name}.log",
        )
        for name in ("a", "b", "c")
    ]
    try:
        for served in replicas:
            served.start()
        for served in replicas:
            served.wait_ready()
        started = time.monotonic()
        senders = [Sender(records[index :: len(replicas)]) for index in range(3)]
        stop = threading.Event()
        bursts = [
            threading.Thread(
                target=sender.send_all, args=(served.url,), kwargs={"stop": stop}
            )
            for sender, served in zip(senders, replicas, strict=True)
        ]
        for burst in bursts:
            burst.start()
        for burst in bursts:
            burst.join(30)
        assert wait_for(lambda: settled(store), timeout=60, interval=0.2)
        time.sleep(max(0.0, 4.0 - (time.monotonic() - started)))
    finally:
        for served in replicas:
            served.stop()

    with store() as session:
        decided = session.execute(
            select(tickets.c.key, func.count(decisions.c.id))
            .join(decisions, decisions.c.ticket_id == tickets.c.id)
            .group_by(tickets.c.key)
        ).all()
        workers = set(
            session.execute(select(inbox_events.c.claimed_by).distinct()).scalars()
        )
        slots = list(
            session.execute(
                select(job_runs.c.slot_start)
                .where(job_runs.c.job == "queue-report")
                .order_by(job_runs.c.slot_start)
            ).scalars()
        )
    notes = [len(fake_servicenow.journal(record["sys_id"])) for record in records]
    gaps = {(b - a).total_seconds() for a, b in zip(slots, slots[1:], strict=False)}
    assert len(decided) == EVENTS
    assert {count for _, count in decided} == {1}
    assert notes == [1] * EVENTS
    assert len(workers) >= 2
    assert len(slots) >= 3
    assert min(gaps) == 1.0
