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


@dataclass(frozen=True, slots=True)
class ModelRecord(ModelInfo):
    """A stored model with its serialized artefact."""

    # Left out of repr because artefacts run to tens of megabytes.
    artefact: bytes = field(repr=False)
