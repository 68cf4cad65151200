"""Report figures computed from hand-made decisions and audit rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from router.analytics.report import build_report
from router.schemas import DecisionAction

from .support import START, decide, event, hours

REPORT_KEYS = (
    "first_touch_accuracy",
    "transfers_per_ticket",
    "time_to_owner_p50_seconds",
    "sla_breaches_from_reassignment",
    "escalation_cycle_p50_seconds",
    "false_escalation_rate",
    "review_share",
    "tickets",
)


@pytest.fixture
def history(session: Session) -> Session:
    """Store four tickets with transfers, a review, SLA breaches and escalations.

    - A: auto-routed to Storage, resolved by Storage after 2 h.
    - B: auto-routed to Access, transferred to Hardware after 1 h, resolved there.
    - C: sent to review, a reviewer picks Hardware at 3 h against the suggestion
      Access, resolved by Hardware.
    - D: auto-routed to Access, transferred twice (Storage, then Access), and
      never resolved. One escalation is acknowledged after 10 min and resolved
      after 1 h, and another is downgraded.
    """
    a = decide(session, "A-1", "Storage", intent="storage_quota")
    b = decide(session, "B-1", "Access", system="servicenow")
    c = decide(session, "C-1", "Access", action=DecisionAction.REVIEW)
    d = decide(session, "D-1", "Access", at=START + timedelta(days=7))
    event(session, a, "ticket_resolved", START + hours(2), group="Storage")
    event(
        session,
        b,
        "transfer",
        START + hours(1),
        from_group="Access",
        to_group="Hardware",
        by="person",
        source="servicenow",
    )
    event(session, b, "sla_breached", START + hours(4), caused_by_reassignment=True)
    event(session, b, "ticket_resolved", START + hours(5), group="Hardware")
    event(
        session,
        c,
        "review_resolved",
        START + hours(3),
        actor="cli:alice",
        resolved_group="Hardware",
        overridden=True,
    )
    event(session, c, "sla_breached", START + hours(8), caused_by_reassignment=False)
    event(session, c, "ticket_resolved", START + hours(9), group="Hardware")
    later = START + timedelta(days=7)
    for offset, group in ((1, "Storage"), (2, "Access")):
        event(
            session,
            d,
            "transfer",
            later + hours(offset),
            from_group="x",
            to_group=group,
            by="person",
            source="jira",
        )
    event(session, d, "escalation_started", later, policy="p1", level=1)
    event(session, d, "escalation_acknowledged", later + hours(1 / 6), policy="p1")
    event(session, d, "escalation_resolved", later + hours(1), policy="p1")
    event(session, d, "escalation_started", later + hours(2), policy="p2", level=1)
    event(session, d, "escalation_downgraded", later + hours(3), policy="p2")
    session.commit()
    return session


def test_report_has_every_issue_key(session: Session) -> None:
    report = build_report(session)

    for key in REPORT_KEYS:
        assert key in report


def test_empty_store_reports_nulls(session: Session) -> None:
    report = build_report(session)

    assert report["tickets"] == 0
    for key in REPORT_KEYS[:-1]:
        assert report[key] is None, key
    assert report["simulated"] is False


def test_first_touch_counts_resolved_tickets(history: Session) -> None:
    report = build_report(history)

    # A right; B first went to Access but Hardware resolved it; C right (reviewer).
    assert report["first_touch_accuracy"] == round(2 / 3, 4)
    assert report["counts"]["first_touch_judged"] == 3


def test_transfers_divide_by_assigned_tickets(history: Session) -> None:
    report = build_report(history)

    assert report["counts"]["transfers"] == 3
    assert report["counts"]["tickets_assigned"] == 4
    assert report["transfers_per_ticket"] == 0.75


def test_time_to_owner_median(history: Session) -> None:
    report = build_report(history)

    # A 0 s (right at once), B 1 h (transfer), C 3 h (review); D has no owner.
    assert report["time_to_owner_p50_seconds"] == 3600.0
    assert report["counts"]["time_to_owner_measured"] == 3


def test_sla_share_caused_by_reassignment(history: Session) -> None:
    report = build_report(history)

    assert report["counts"]["sla_breaches"] == 2
    assert report["sla_breaches_from_reassignment"] == 0.5


def test_escalation_cycle_and_false_rate(history: Session) -> None:
    report = build_report(history)

    assert report["escalation_cycle_p50_seconds"] == 3600.0
    assert report["escalation_acknowledge_p50_seconds"] == 600.0
    assert report["escalation_resolve_p50_seconds"] == 3000.0
    assert report["false_escalation_rate"] == 0.5


def test_review_share_and_agreement(history: Session) -> None:
    report = build_report(history)

    assert report["review_share"] == 0.25
    assert report["reviewer_agreement"] == 0.0


def test_breakdowns_carry_ticket_counts(history: Session) -> None:
    report = build_report(history)

    assert report["by_resolver_group"]["Hardware"]["tickets"] == 2
    assert report["by_resolver_group"]["Hardware"]["first_touch_accuracy"] == 0.5
    assert report["by_source_system"]["servicenow"]["tickets"] == 1
    assert report["by_intent"]["storage_quota"]["first_touch_accuracy"] == 1.0
    assert list(report["by_week"]) == ["2026-W45", "2026-W46"]
    assert report["by_week"]["2026-W46"]["tickets"] == 1


def test_confusion_counts_first_against_owner(history: Session) -> None:
    report = build_report(history)

    assert report["confusion"] == {
        "Access": {"Hardware": 1},
        "Hardware": {"Hardware": 1},
        "Storage": {"Storage": 1},
    }


def test_since_leaves_out_older_tickets(history: Session) -> None:
    report = build_report(history, since=START + timedelta(days=1))

    assert report["tickets"] == 1
    assert report["first_touch_accuracy"] is None
    assert report["transfers_per_ticket"] == 2.0


def test_simulated_rows_mark_report(session: Session) -> None:
    key = decide(session, "S-1", "Storage")
    event(
        session,
        key,
        "ticket_resolved",
        START + hours(1),
        group="Storage",
        simulated=True,
    )
    session.commit()

    report = build_report(session)

    assert report["simulated"] is True
    assert "simulated" in report["note"]


def test_first_group_set_is_no_transfer(session: Session) -> None:
    key = decide(session, "R-1", "Access", action=DecisionAction.REVIEW)
    event(
        session,
        key,
        "transfer",
        START + hours(1),
        from_group=None,
        to_group="Storage",
        by="person",
        source="servicenow",
    )
    event(session, key, "ticket_resolved", START + hours(2), group="Storage")
    session.commit()

    report = build_report(session)

    assert report["counts"]["transfers"] == 0
    assert report["transfers_per_ticket"] == 0.0
    assert report["first_touch_accuracy"] == 1.0
    assert report["time_to_owner_p50_seconds"] == 3600.0
