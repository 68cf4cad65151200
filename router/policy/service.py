"""Decide what happens to a ticket once the model has scored it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass

from router.mapping import Taxonomy, Thresholds
from router.schemas import DecisionAction, Ticket


@dataclass(frozen=True, slots=True)
class Verdict:
    """The action for one ticket, the threshold it was held to and why."""

    action: DecisionAction
    threshold: float
    notes: tuple[str, ...] = ()


def decide(
    *,
    ticket: Ticket,
    group: str,
    confidence: float,
    intent: str,
    thresholds: Thresholds,
    known_groups: Collection[str],
    force_review_intents: Collection[str] = (),
) -> Verdict:
    """Auto-route at or above the group's threshold, else send the ticket to review.

    Review is forced, whatever the confidence, for a ticket with no text, for a group
    the taxonomy does not list, and for intents that policy always sends to a person.
    """
    threshold = thresholds.threshold_for(group)
    if not (ticket.title.strip() or ticket.description.strip()):
        return Verdict(DecisionAction.FORCED_REVIEW, threshold, ("ticket has no text",))
    if group not in known_groups:
        note = f"group {group!r} is not in the taxonomy, so a person must confirm it"
        return Verdict(DecisionAction.FORCED_REVIEW, threshold, (note,))
    if intent in force_review_intents:
        note = f"intent {intent!r} always goes to review"
        return Verdict(DecisionAction.FORCED_REVIEW, threshold, (note,))
    if confidence >= threshold:
        note = (
            f"confidence {confidence:.2f} is at or above the threshold {threshold:.2f}"
        )
        return Verdict(DecisionAction.AUTO_ROUTE, threshold, (note,))
    note = f"confidence {confidence:.2f} is below the threshold {threshold:.2f}"
    return Verdict(DecisionAction.REVIEW, threshold, (note,))


def policy_version(*, thresholds: Thresholds, taxonomy: Taxonomy) -> str:
    """Return the decision rules' version: their own label plus a content hash."""
    content = json.dumps(
        {
            "thresholds": thresholds.model_dump(mode="json"),
            "taxonomy": taxonomy.model_dump(mode="json"),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(content.encode()).hexdigest()[:12]
    label = thresholds.version or "unversioned"
    return f"{label}+{digest}"
