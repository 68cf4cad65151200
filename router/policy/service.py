"""Decide what happens to a ticket once the model has scored it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from router.escalation.schemas import EscalationFile
from router.mapping import Taxonomy, Thresholds
from router.policy.engine import PolicyOutcome
from router.policy.schemas import PolicyFile, PolicySettings
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
    routed_by: str | None = None,
) -> Verdict:
    """Auto-route at or above the group's threshold, else send the ticket to review.

    Review is forced, whatever the confidence, for a ticket with no text, for a group
    the taxonomy does not list, and for intents that policy always sends to a person.
    `routed_by` names the policy rule that chose `group`; such a ticket is
    auto-routed without the confidence test.
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
    if routed_by is not None:
        note = f"policy rule {routed_by} routes the ticket to {group}"
        return Verdict(DecisionAction.AUTO_ROUTE, threshold, (note,))
    if confidence >= threshold:
        note = (
            f"confidence {confidence:.2f} is at or above the threshold {threshold:.2f}"
        )
        return Verdict(DecisionAction.AUTO_ROUTE, threshold, (note,))
    note = f"confidence {confidence:.2f} is below the threshold {threshold:.2f}"
    return Verdict(DecisionAction.REVIEW, threshold, (note,))


def apply_outcome(
    verdict: Verdict, outcome: PolicyOutcome, *, unknown_fields: Collection[str]
) -> Verdict:
    """Force review when a rule or a regulated workflow requests it; add the notes.

    Regulated workflows go to review whatever the confidence or the rule's group.
    """
    notes = list(verdict.notes) + outcome.reasons
    action = verdict.action
    if outcome.regulated:
        action = DecisionAction.FORCED_REVIEW
        names = ", ".join(outcome.regulated)
        notes.append(f"workflow {names} is regulated, so a person must confirm")
    elif outcome.review:
        action = DecisionAction.FORCED_REVIEW
        notes.append("a policy rule sends the ticket to review")
    if unknown_fields:
        notes.append(
            "enrichment degraded: "
            + ", ".join(sorted(unknown_fields))
            + " unknown, so rules on them did not match"
        )
    return Verdict(action, verdict.threshold, tuple(notes))


def policy_version(
    *,
    thresholds: Thresholds,
    taxonomy: Taxonomy,
    policies: Mapping[str, PolicyFile] | None = None,
    settings: PolicySettings | None = None,
    escalations: Mapping[str, EscalationFile] | None = None,
) -> str:
    """Return the decision rules' version: their own labels plus a content hash.

    The label is the thresholds' version, followed by the version in policy.yaml
    when there is one. The hash covers thresholds, taxonomy, policy.yaml and every
    policy and escalation file, so any change to them gives a new version.
    """
    content: dict[str, object] = {
        "thresholds": thresholds.model_dump(mode="json"),
        "taxonomy": taxonomy.model_dump(mode="json"),
    }
    if policies:
        content["policies"] = {
            name: policy.model_dump(mode="json") for name, policy in policies.items()
        }
    if settings is not None:
        content["policy"] = settings.model_dump(mode="json")
    if escalations:
        content["escalations"] = {
            name: file.model_dump(mode="json") for name, file in escalations.items()
        }
    encoded = json.dumps(content, sort_keys=True, default=str)
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:12]
    label = thresholds.version or "unversioned"
    if settings is not None:
        label = f"{label}.{settings.version}"
    return f"{label}+{digest}"
