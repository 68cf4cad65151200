"""The enrichment pipeline against a real local HTTP server that misbehaves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from router.enrichment.http import HttpEnricher, read_json_path
from router.enrichment.pipeline import ConfiguredEnricher, EnrichmentPipeline
from router.enrichment.schemas import EnricherSpec
from router.schemas import Ticket

from .context_server import ContextServer

TOKEN = "billing-token-5d1e"


@pytest.fixture
def server() -> Iterator[ContextServer]:
    with ContextServer() as running:
        running.documents["/accounts/acme"] = {
            "finance_hold": True,
            "invoices": [{"open": 3, "amount": 1250.5}],
        }
        yield running


def spec(server: ContextServer, **values: Any) -> EnricherSpec:
    options = {
        "url": server.url + "/accounts/{account}",
        "auth": {"scheme": "bearer", "env": "OPSROUTE_TEST_BILLING_TOKEN"},
        "fields": {
            "finance_hold": "$.finance_hold",
            "invoices.open": "$.invoices[0].open",
        },
    }
    defaults: dict[str, Any] = {
        "name": "billing",
        "kind": "http",
        "timeout_seconds": 0.5,
        "retries": 0,
        "backoff_seconds": 0.05,
        "options": options,
    }
    return EnricherSpec.model_validate(defaults | values)


def pipeline(configured: EnricherSpec) -> EnrichmentPipeline:
    return EnrichmentPipeline(
        [ConfiguredEnricher(HttpEnricher(configured), configured)]
    )


def ticket(account: str | None = "acme", number: int = 1) -> Ticket:
    return Ticket(
        source_system="jira",
        external_id=f"HELP-{number}",
        title="Cannot add users",
        account=account,
    )


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSROUTE_TEST_BILLING_TOKEN", TOKEN)


def test_http_enricher_fills_declared_fields(server: ContextServer) -> None:
    [(enriched, calls)] = pipeline(spec(server)).enrich([ticket()])
    assert enriched.context == {"finance_hold": True, "invoices": {"open": 3}}
    assert calls[0].outcome == "ok"
    assert calls[0].fields == ["finance_hold", "invoices.open"]
    assert server.requests[0]["authorization"] == f"Bearer {TOKEN}"


def test_hanging_source_times_out_quickly(server: ContextServer) -> None:
    server.mode = "hang"
    started = time.monotonic()
    [(enriched, calls)] = pipeline(spec(server)).enrich([ticket()])
    elapsed = time.monotonic() - started
    assert elapsed < 1.5
    assert calls[0].outcome == "timeout"
    assert enriched.context["unknown_fields"] == ["finance_hold", "invoices.open"]


def test_hanging_source_bounds_whole_batch(server: ContextServer) -> None:
    server.mode = "hang"
    tickets = [ticket(account=f"acct-{n}", number=n) for n in range(12)]
    started = time.monotonic()
    results = pipeline(spec(server)).enrich(tickets)
    assert time.monotonic() - started < 1.5
    assert len(results) == 12
    assert {calls[0].outcome for _, calls in results} == {"timeout"}


def test_closed_connection_marks_fields_unknown(server: ContextServer) -> None:
    server.mode = "close"
    [(enriched, calls)] = pipeline(spec(server)).enrich([ticket()])
    assert calls[0].outcome == "failed"
    assert "connection failed" in (calls[0].error or "")
    assert enriched.context["unknown_fields"] == ["finance_hold", "invoices.open"]


def test_server_error_is_retried(server: ContextServer) -> None:
    server.mode = "error"
    configured = spec(server, retries=2, timeout_seconds=2.0)
    [(_, calls)] = pipeline(configured).enrich([ticket()])
    assert calls[0].outcome == "failed"
    assert len(server.requests) == 3


def test_breaker_opens_after_failures(server: ContextServer) -> None:
    server.mode = "error"
    configured = spec(server, breaker={"failures": 2, "reset_seconds": 60})
    enrichment = pipeline(configured)
    outcomes = [
        enrichment.enrich([ticket(number=n)])[0][1][0].outcome for n in range(4)
    ]
    assert outcomes == ["failed", "failed", "circuit_open", "circuit_open"]
    assert len(server.requests) == 2


def test_cache_shares_one_call(server: ContextServer) -> None:
    enrichment = pipeline(spec(server, cache_ttl_seconds=60))
    first = enrichment.enrich([ticket(number=1), ticket(number=2)])
    second = enrichment.enrich([ticket(number=3)])
    assert len(server.requests) == 1
    assert [calls[0].outcome for _, calls in first] == ["ok", "ok"]
    assert second[0][1][0].outcome == "cached"
    assert second[0][0].context["finance_hold"] is True


def test_ticket_without_placeholder_skipped(server: ContextServer) -> None:
    [(enriched, calls)] = pipeline(spec(server)).enrich([ticket(account=None)])
    assert calls == []
    assert enriched.context == {}
    assert server.requests == []


def test_filled_context_is_not_looked_up(server: ContextServer) -> None:
    filled = ticket().model_copy(
        update={"context": {"finance_hold": False, "invoices": {"open": 0}}}
    )
    [(enriched, calls)] = pipeline(spec(server)).enrich([filled])
    assert calls == []
    assert enriched.context["finance_hold"] is False


def test_missing_token_fails_without_secret(
    server: ContextServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPSROUTE_TEST_BILLING_TOKEN")
    [(_, calls)] = pipeline(spec(server)).enrich([ticket()])
    assert calls[0].outcome == "failed"
    assert "OPSROUTE_TEST_BILLING_TOKEN" in (calls[0].error or "")
    assert server.requests == []


def test_error_text_never_contains_token(server: ContextServer) -> None:
    server.mode = "error"
    [(_, calls)] = pipeline(spec(server)).enrich([ticket()])
    assert TOKEN not in calls[0].model_dump_json()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.a.b", 1),
        ("$.list[1].c", "two"),
        ("$.list[5].c", None),
        ("$.missing.deeper", None),
    ],
)
def test_json_path_reads(path: str, expected: Any) -> None:
    document = {"a": {"b": 1}, "list": [{"c": "one"}, {"c": "two"}]}
    assert read_json_path(document, path) == expected


def test_json_path_must_start_with_dollar() -> None:
    with pytest.raises(ValueError, match="must start with"):
        read_json_path({}, "a.b")
