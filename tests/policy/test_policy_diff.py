"""`opsroute policy diff`: replay stored tickets under changed policies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from router.cli.main import cli
from router.mapping import default_mappings_dir, load_mappings
from router.policy.preview import preview_ticket
from router.schemas import Candidate, Decision, Explanation, GroupExplanation, Ticket
from router.service.actions import record_decision_effects
from router.store.db import session_factory
from router.store.service import save_decisions

EXAMPLE = Path(str(default_mappings_dir())) / "examples" / "seat-overage-access.json"


def store_example_decision(engine: Engine) -> Ticket:
    """Store the seat overage example with the decision the shipped policies make."""
    ticket = Ticket.model_validate_json(EXAMPLE.read_text())
    assert ticket.created_at is not None
    preview = preview_ticket(ticket, mappings=load_mappings(), now=ticket.created_at)
    outcome = preview.outcome
    decision = Decision(
        ticket_key=ticket.key,
        resolver_group=preview.route_to or "Access",
        intent="access_request",
        confidence=0.8,
        action=preview.action,
        threshold=0.9,
        candidates=[Candidate(group="Access", probability=0.8)],
        explanation=Explanation(chosen=GroupExplanation(group="Access", score=0.8)),
        model_version="test",
        policy_version="test",
        decided_at=ticket.created_at,
        rules_fired=outcome.rules_fired,
        tasks=outcome.tasks,
    )
    with session_factory(engine).begin() as session:
        [decision_id] = save_decisions(session, items=[(ticket, decision)])
        record_decision_effects(session, items=[(ticket, decision, decision_id)])
    return ticket


def run_diff(database_url: str, *arguments: str) -> dict:
    result = CliRunner().invoke(
        cli,
        ["policy", "diff", "--since", "2026-01-01", "--json", *arguments],
        env={"OPSROUTE_DATABASE_URL": database_url},
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_unchanged_policies_change_nothing(
    migrated_engine: Engine, database_url: str
) -> None:
    store_example_decision(migrated_engine)
    output = run_diff(database_url)
    assert output["replayed"] == 1
    assert output["changed"] == []


def test_edited_policy_shows_changed_route(
    migrated_engine: Engine, database_url: str, tmp_path: Path
) -> None:
    ticket = store_example_decision(migrated_engine)
    folder = tmp_path / "mappings"
    shutil.copytree(str(default_mappings_dir()), folder)
    policy = folder / "policies" / "seat-overage-access.yaml"
    policy.write_text(
        policy.read_text().replace(
            "route_to: Commercial Operations", "route_to: Finance Operations"
        )
    )
    output = run_diff(database_url, "--mappings", str(folder))
    [change] = output["changed"]
    assert change["ticket_key"] == ticket.key
    assert change["changes"] == {
        "route_to": {
            "stored": "Commercial Operations",
            "replayed": "Finance Operations",
        }
    }


def test_bad_since_is_rejected(database_url: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["policy", "diff", "--since", "last week"],
        env={"OPSROUTE_DATABASE_URL": database_url},
    )
    assert result.exit_code == 1
    assert "--since 'last week' is not an ISO 8601" in result.output


@pytest.fixture(autouse=True)
def _no_mappings_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSROUTE_MAPPINGS_DIR", raising=False)
