"""Labels from the store and the guard for queues a model never saw."""

from __future__ import annotations

from sqlalchemy.orm import Session

from router.analytics.labels import NewQueueGuard, collect_labels, unknown_labels
from router.schemas import (
    Decision,
    DecisionAction,
    Explanation,
    GroupExplanation,
    Ticket,
)

from .support import START, decide, event, hours

KNOWN = {"Hardware", "Access"}


def _decision(ticket: Ticket, action: DecisionAction) -> Decision:
    return Decision(
        ticket_key=ticket.key,
        resolver_group="Access",
        intent="general",
        confidence=0.97,
        action=action,
        threshold=0.9,
        explanation=Explanation(chosen=GroupExplanation(group="Access", score=1.0)),
        model_version="v1",
        policy_version="1+test",
    )


def test_resolving_group_beats_human_choice(session: Session) -> None:
    key = decide(session, "L-1", "Access")
    event(session, key, "override", START + hours(1), group="Storage")
    event(session, key, "ticket_resolved", START + hours(2), group="Hardware")
    session.commit()

    labels = collect_labels(session)

    assert [(label.label, label.source) for label in labels] == [
        ("Hardware", "ticket_resolved")
    ]
    assert labels[0].example.title == "printer on floor 3 is broken"


def test_latest_human_choice_wins(session: Session) -> None:
    key = decide(session, "L-2", "Access")
    event(session, key, "review_resolved", START + hours(1), resolved_group="Storage")
    event(session, key, "override", START + hours(2), group="Hardware")
    session.commit()

    labels = collect_labels(session)

    assert [(label.label, label.source) for label in labels] == [
        ("Hardware", "override")
    ]


def test_transfer_by_opsroute_is_no_label(session: Session) -> None:
    person = decide(session, "L-3", "Access")
    machine = decide(session, "L-4", "Access")
    event(
        session, person, "transfer", START + hours(1), to_group="Storage", by="person"
    )
    event(
        session,
        machine,
        "transfer",
        START + hours(1),
        to_group="Storage",
        by="opsroute",
    )
    session.commit()

    labels = collect_labels(session)

    assert [label.ticket_key for label in labels] == [person]


def test_unknown_labels_count_new_groups(session: Session) -> None:
    for number in range(3):
        key = decide(session, f"N-{number}", "Access", title="vpn tunnel drops")
        event(session, key, "ticket_resolved", START + hours(1), group="Network")
    key = decide(session, "H-1", "Hardware")
    event(session, key, "ticket_resolved", START + hours(1), group="Hardware")
    session.commit()

    counts = unknown_labels(collect_labels(session), known=KNOWN)

    assert counts == {"Network": 3}


def test_guard_holds_new_queue_tickets(session: Session) -> None:
    titles = ("vpn tunnel drops at night", "vpn gateway refuses tunnel", "printer jam")
    for number, title in enumerate(titles):
        group = "Hardware" if "printer" in title else "Network"
        key = decide(session, f"G-{number}", "Access", title=title)
        event(session, key, "ticket_resolved", START + hours(1), group=group)
    session.commit()
    guard = NewQueueGuard.from_labels(collect_labels(session), known=KNOWN)
    vpn = Ticket(source_system="jira", external_id="X-1", title="vpn tunnel down")
    printer = Ticket(source_system="jira", external_id="X-2", title="printer jam")

    guarded = guard.apply(
        [
            (vpn, _decision(vpn, DecisionAction.AUTO_ROUTE)),
            (printer, _decision(printer, DecisionAction.AUTO_ROUTE)),
        ]
    )

    assert guard.terms_by_queue == {"Network": frozenset({"vpn", "tunnel"})}
    assert guarded[0][1].action is DecisionAction.FORCED_REVIEW
    assert "looks like queue 'Network'" in guarded[0][1].explanation.notes[-1]
    assert guarded[1][1].action is DecisionAction.AUTO_ROUTE


def test_guard_without_new_queue_changes_nothing() -> None:
    ticket = Ticket(source_system="jira", external_id="X-3", title="vpn tunnel down")
    pair = (ticket, _decision(ticket, DecisionAction.AUTO_ROUTE))

    assert NewQueueGuard({}).apply([pair]) == [pair]
