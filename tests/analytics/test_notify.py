"""The monthly drift job queues one `drift` notification for the log notifier."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from router.analytics.notify import queue_drift_summary
from router.store.outbox import list_actions

from .support import START, decide


def _fill(session: Session) -> None:
    for number in range(30):
        decide(session, f"OLD-{number}", "Hardware", at=START + timedelta(hours=number))
        later = START + timedelta(days=40, hours=number)
        decide(session, f"NEW-{number}", "Access", at=later)
    session.commit()


def test_drift_summary_queues_notification(session: Session) -> None:
    _fill(session)

    report = queue_drift_summary(session, now=START + timedelta(days=42))
    session.commit()
    actions = list_actions(session)

    assert report is not None
    assert report.drifted is True
    assert len(actions) == 1
    action = actions[0]
    assert action.system == "log"
    assert action.instance == "default"
    assert action.kind == "notification"
    assert action.marker == "opsroute:notify:drift-20261214:1"
    assert action.payload["notification_type"] == "drift"
    assert action.payload["target"] == "channel:#opsroute-drift"
    assert "label mix shifted" in action.payload["reason"]
    assert "opsroute drift review" in action.payload["context"]["summary"]


def test_same_day_queues_once(session: Session) -> None:
    _fill(session)
    now = START + timedelta(days=42)

    queue_drift_summary(session, now=now)
    queue_drift_summary(session, now=now + timedelta(hours=1))
    session.commit()

    assert len(list_actions(session)) == 1


def test_empty_store_queues_nothing(session: Session) -> None:
    report = queue_drift_summary(session, now=START)

    assert report is None
    assert list_actions(session) == []
