"""Canonical ticket and decision models shared by every stage of the router."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class DecisionAction(StrEnum):
    """Action the router takes on a decided ticket."""

    AUTO_ROUTE = "auto_route"
    REVIEW = "review"
    FORCED_REVIEW = "forced_review"


class Ticket(BaseModel):
    """One ticket from any source system, after normalization through its mapping.

    `external_id` is the id people use (INC0012345, HDFS-123, case number 00001234);
    `record_id` is the system's internal key (sys_id, Jira issue id, 18-char Case Id).
    Priority runs from 1 (highest) to 5; urgency and impact from 1 (high) to 3.
    """

    model_config = ConfigDict(extra="forbid")

    source_system: str = Field(min_length=1)
    external_id: str = Field(min_length=1)
    record_id: str | None = None
    title: str = ""
    description: str = ""
    requester: str | None = None
    account: str | None = None
    priority: int | None = Field(default=None, ge=1, le=5)
    urgency: int | None = Field(default=None, ge=1, le=3)
    impact: int | None = Field(default=None, ge=1, le=3)
    category: str | None = None
    subcategory: str | None = None
    issue_type: str | None = None
    state: str | None = None
    assignment_group: str | None = None
    labels: list[str] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    raw: dict[str, Any] = Field(default_factory=dict)

    @field_validator("created_at", "updated_at")
    @classmethod
    def _require_timezone(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @property
    def key(self) -> str:
        """Return the ticket's store key, `system:external_id`."""
        return f"{self.source_system}:{self.external_id}"


class GroupExplanation(BaseModel):
    """The features that weighed most for one candidate group."""

    group: str
    score: float
    # Feature name -> its contribution to the group's score, strongest first.
    terms: dict[str, float] = Field(default_factory=dict)


class Explanation(BaseModel):
    """Reasons for choosing a group over the runner-up."""

    chosen: GroupExplanation
    runner_up: GroupExplanation | None = None
    intent_matches: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class Candidate(BaseModel):
    """A resolver group the model considered, with its probability."""

    group: str
    probability: float = Field(ge=0.0, le=1.0)


class TaskEffect(BaseModel):
    """A task a policy creates in the source system, linked to the ticket."""

    type: str
    title: str
    description: str = ""
    # A resolver group name or a person; None leaves the task unassigned.
    assignee: str | None = None


class NotificationEffect(BaseModel):
    """A notification a policy sends, to a target such as `channel:#billing`."""

    target: str
    reason: str
    notification_type: str = "info"
    # Context fields the target may see; financial ones only for allowed roles.
    context: dict[str, Any] = Field(default_factory=dict)


class EnrichmentCall(BaseModel):
    """One enricher call made for a ticket, as written to the audit log."""

    enricher: str
    duration_ms: float
    # ok, cached, skipped, timeout, failed or circuit_open.
    outcome: str
    fields: list[str] = Field(default_factory=list)
    error: str | None = None


class Decision(BaseModel):
    """The router's decision for one ticket, with everything needed to audit it."""

    ticket_key: str
    resolver_group: str
    intent: str
    urgency: int | None = Field(default=None, ge=1, le=3)
    confidence: float = Field(ge=0.0, le=1.0)
    action: DecisionAction
    threshold: float = Field(ge=0.0, le=1.0)
    candidates: list[Candidate] = Field(default_factory=list)
    explanation: Explanation
    model_version: str
    policy_version: str
    decided_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # Policy outcome: the rules that matched and the effects they asked for.
    rules_fired: list[str] = Field(default_factory=list)
    tasks: list[TaskEffect] = Field(default_factory=list)
    notifications: list[NotificationEffect] = Field(default_factory=list)
    escalation: str | None = None
    priority: int | None = Field(default=None, ge=1, le=5)
    # Context fields that enrichers could not fill, so rules on them did not match.
    unknown_fields: list[str] = Field(default_factory=list)
    enrichment: list[EnrichmentCall] = Field(default_factory=list)
