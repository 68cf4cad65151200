"""Immutable records that the store returns instead of ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from router.schemas import Candidate, Decision, DecisionAction, Explanation, Ticket


class AuditEvent(StrEnum):
    """Audit events the router writes; `append_audit` accepts other names too."""

    CLASSIFICATION = "classification"
    DECISION = "decision"
    OVERRIDE = "override"
    REVIEW_RESOLVED = "review_resolved"
    MODEL_TRAINED = "model_trained"
    MODEL_ACTIVATED = "model_activated"
    MODEL_ROLLED_BACK = "model_rolled_back"
    OUTBOX_RETRIED = "outbox_retried"
    TRANSFER = "transfer"


class ModelState(StrEnum):
    """Lifecycle of a stored model within its kind and dataset.

    One model is active and routes. A shadow model decides alongside it without
    acting until it is promoted. The model that was active before the current one is
    previous, which `rollback_model` restores. Every older model is retired.
    """

    ACTIVE = "active"
    SHADOW = "shadow"
    PREVIOUS = "previous"
    RETIRED = "retired"


class InboxStatus(StrEnum):
    """States of a stored webhook event; only pending events are claimed."""

    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


class ActionStatus(StrEnum):
    """States of an outbox action."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    DEAD = "dead"


class ActionKind(StrEnum):
    """Kinds of effect an outbox action delivers."""

    WRITE_BACK = "write_back"
    TASK = "task"
    NOTIFICATION = "notification"


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """A stored ticket; `payload` is the Ticket as JSON from its latest save."""

    id: int
    key: str
    source_system: str
    external_id: str
    record_id: str | None
    title: str
    payload: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime

    def to_ticket(self) -> Ticket:
        """Rebuild the Ticket model from the stored payload."""
        return Ticket.model_validate(self.payload)


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A stored routing decision."""

    id: int
    ticket_id: int
    ticket_key: str
    resolver_group: str
    intent: str
    urgency: int | None
    confidence: float
    action: DecisionAction
    threshold: float
    candidates: list[dict[str, Any]]
    explanation: dict[str, Any]
    model_version: str
    policy_version: str
    decided_at: datetime

    def to_decision(self) -> Decision:
        """Rebuild the Decision model from the stored columns."""
        return Decision(
            ticket_key=self.ticket_key,
            resolver_group=self.resolver_group,
            intent=self.intent,
            urgency=self.urgency,
            confidence=self.confidence,
            action=self.action,
            threshold=self.threshold,
            candidates=[Candidate.model_validate(c) for c in self.candidates],
            explanation=Explanation.model_validate(self.explanation),
            model_version=self.model_version,
            policy_version=self.policy_version,
            decided_at=self.decided_at,
        )


@dataclass(frozen=True, slots=True)
class ReviewItemRecord:
    """A review item with the ticket and the decision that opened or last updated it."""

    id: int
    ticket_id: int
    ticket_key: str
    title: str
    decision_id: int
    status: str
    suggested_group: str
    confidence: float
    candidates: list[dict[str, Any]]
    created_at: datetime
    resolved_group: str | None
    resolved_by: str | None
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the append-only audit log."""

    id: int
    at: datetime
    event: str
    ticket_key: str | None
    actor: str
    inputs: dict[str, Any]
    versions: dict[str, Any]
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A stored model's metadata, without its artefact."""

    id: int
    version: str
    kind: str
    dataset: str
    label_set: list[str]
    metrics: dict[str, Any]
    params: dict[str, Any]
    data_hash: str
    created_at: datetime
    active: bool
    state: str


@dataclass(frozen=True, slots=True)
class ModelRecord(ModelInfo):
    """A stored model with its serialized artefact."""

    # Left out of repr because artefacts run to tens of megabytes.
    artefact: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """A stored webhook event; `record` is the vendor's record as it arrived."""

    id: int
    dedupe_key: str
    system: str
    instance: str
    delivery_id: str | None
    record_key: str
    record_version: str | None
    event_type: str
    record: dict[str, Any]
    headers: dict[str, str]
    status: str
    received_at: datetime
    processed_at: datetime | None
    claimed_by: str | None
    attempts: int
    error: str | None


@dataclass(frozen=True, slots=True)
class OutboxAction:
    """A stored outbox action with its delivery state."""

    id: int
    system: str
    instance: str
    kind: str
    ticket_key: str
    record_id: str | None
    payload: dict[str, Any]
    marker: str
    decision_id: int | None
    status: str
    attempts: int
    next_attempt_at: datetime
    claimed_by: str | None
    claim_expires_at: datetime | None
    last_error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    done_at: datetime | None

    @property
    def first_attempt(self) -> bool:
        """Return whether no earlier claim of this action can have written anything.

        The claim counts attempts, and every failure and re-queue leaves
        `last_error` set, so the first claim of a new action has one attempt and
        no error. A claim that expired after a crash counts as an attempt.
        """
        return self.attempts <= 1 and self.last_error is None


@dataclass(frozen=True, slots=True)
class Lease:
    """A named lease and the holder that owns it until `expires_at`."""

    name: str
    holder: str
    expires_at: datetime
    acquired_at: datetime
