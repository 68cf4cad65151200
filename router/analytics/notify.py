"""Post the drift review's summary through the notifier, as an outbox action."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from router.analytics.drift import (
    DriftLimits,
    DriftReport,
    default_windows,
    review_drift,
)
from router.store.outbox import NewOutboxAction, enqueue_actions
from router.store.records import ActionKind

logger = logging.getLogger(__name__)

# The notifier `log` writes the summary to the service log. Notifiers have one
# instance, named `default`.
DRIFT_NOTIFIER = "log"
DRIFT_INSTANCE = "default"
# NOTE: The target is fixed until notification routing has its own settings.
DRIFT_TARGET = "channel:#opsroute-drift"
RECENT_DAYS = 28
REFERENCE_DAYS = 56


def queue_drift_summary(
    session: Session, *, now: datetime, limits: DriftLimits | None = None
) -> DriftReport | None:
    """Review drift and queue one `drift` notification with its summary.

    The marker carries the day, so a job that fires twice on one day queues one
    notification.

    Returns:
        The drift review, or None when no decision is stored.
    """
    windows = default_windows(
        session, recent_days=RECENT_DAYS, reference_days=REFERENCE_DAYS
    )
    if windows is None:
        logger.info("Drift review skipped: no decisions are stored")
        return None
    report = review_drift(session, windows=windows, limits=limits or DriftLimits())
    title = (
        f"Routing drift: {len(report.flags)} measures moved"
        if report.drifted
        else "Routing drift: nothing moved beyond its limit"
    )
    payload: dict[str, Any] = {
        "notification_type": "drift",
        "target": DRIFT_TARGET,
        "reason": "; ".join(report.flags) or "monthly drift review",
        "ticket_key": None,
        "title": title,
        "priority": None,
        "resolver_group": None,
        "confidence": None,
        "candidates": [],
        "context": {"summary": report.as_text(), "drift": report.as_json()},
        "escalation": None,
        "link": None,
    }
    enqueue_actions(
        session,
        actions=[
            NewOutboxAction(
                system=DRIFT_NOTIFIER,
                instance=DRIFT_INSTANCE,
                kind=ActionKind.NOTIFICATION.value,
                ticket_key="drift-review",
                record_id=None,
                payload=payload,
                marker=f"opsroute:notify:drift-{now:%Y%m%d}:1",
                decision_id=None,
            )
        ],
        now=now,
    )
    logger.info(
        "Drift review queued: %d flags over %d recent and %d reference tickets",
        len(report.flags),
        report.recent_tickets,
        report.reference_tickets,
    )
    return report
