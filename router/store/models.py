"""SQLAlchemy tables of the store.

The Alembic revisions under `migrations/versions` create the same schema; a test
compares the two, so a change here needs a new revision.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

# Fixed constraint names, so that migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")


class _SQLiteDateTime(sqlite.DATETIME):
    """SQLite DATETIME that formats bound values with `datetime.isoformat`.

    The text equals SQLAlchemy's default SQLite storage format
    (`2025-03-01 09:30:00.000000`), so reading goes through the inherited parser.
    Binding takes about 0.6 of the time of the inherited `%`-formatting, which
    counts in `save_decisions`.
    """

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], str | None]:
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            return value.isoformat(sep=" ", timespec="microseconds")

        return process


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no timezone type, so values are stored there as naive UTC and come back
    with `tzinfo=UTC`. PostgreSQL stores `timestamptz` and returns values converted
    to UTC. Naive datetimes are rejected on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLiteDateTime())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is UTC:
            # Fast path for the common case, which save_decisions binds many times.
            return value.replace(tzinfo=None) if dialect.name == "sqlite" else value
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"Naive datetime {value.isoformat()} cannot be stored; "
                "pass an aware datetime, for example datetime.now(UTC)."
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base holding the store's metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TicketRow(Base):
    """One ticket, upserted by `key` each time it is routed."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    source_system: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(255), index=True)
    record_id: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DecisionRow(Base):
    """One routing decision; a ticket routed again gets another row."""

    __tablename__ = "decisions"
    __table_args__ = (
        CheckConstraint(
            "action IN ('auto_route', 'review', 'forced_review')", name="action"
        ),
        Index("ix_decisions_ticket_id_decided_at", "ticket_id", "decided_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    resolver_group: Mapped[str] = mapped_column(String(255))
    intent: Mapped[str] = mapped_column(String(255))
    urgency: Mapped[int | None] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    action: Mapped[str] = mapped_column(String(20))
    threshold: Mapped[float] = mapped_column(Float)
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    explanation: Mapped[dict[str, Any]] = mapped_column(JSONType)
    model_version: Mapped[str] = mapped_column(String(100))
    policy_version: Mapped[str] = mapped_column(String(100))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReviewItemRow(Base):
    """A ticket waiting for a person to pick its group; at most one open per ticket."""

    __tablename__ = "review_items"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'resolved')", name="status"),
        Index(
            "uq_review_items_open_ticket_id",
            "ticket_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_review_items_status_created_at", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"))
    status: Mapped[str] = mapped_column(String(20))
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_group: Mapped[str | None] = mapped_column(String(255))
    resolved_by: Mapped[str | None] = mapped_column(String(255))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ModelRow(Base):
    """A trained model with its artefact; at most one active per kind and dataset."""

    __tablename__ = "models"
    __table_args__ = (
        Index(
            "uq_models_active_kind_dataset",
            "kind",
            "dataset",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
        Index("ix_models_kind_data_hash", "kind", "data_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    dataset: Mapped[str] = mapped_column(String(255))
    label_set: Mapped[list[str]] = mapped_column(JSONType)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    data_hash: Mapped[str] = mapped_column(String(128))
    # LargeBinary is BLOB on SQLite and bytea on PostgreSQL.
    artefact: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean)
    # active, shadow, previous or retired; `active` is true exactly in state active.
    state: Mapped[str] = mapped_column(String(20), server_default="retired")


class AuditLogRow(Base):
    """One audit event; triggers installed by a migration reject UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_ticket_key_at", "ticket_key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    event: Mapped[str] = mapped_column(String(40))
    ticket_key: Mapped[str | None] = mapped_column(String(300))
    actor: Mapped[str] = mapped_column(String(255))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONType)
    versions: Mapped[dict[str, Any]] = mapped_column(JSONType)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)


class InboxEventRow(Base):
    """One webhook event as received, stored before it is acknowledged.

    `dedupe_key` is the delivery id, or the record and its version when the system
    sends no delivery id, so a redelivered event is stored once.
    """

    __tablename__ = "inbox_events"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'done', 'skipped', 'failed')", name="status"
        ),
        Index("ix_inbox_events_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(800), unique=True)
    system: Mapped[str] = mapped_column(String(40))
    instance: Mapped[str] = mapped_column(String(100))
    delivery_id: Mapped[str | None] = mapped_column(String(255))
    record_key: Mapped[str] = mapped_column(String(255))
    record_version: Mapped[str | None] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(100))
    record: Mapped[dict[str, Any]] = mapped_column(JSONType)
    headers: Mapped[dict[str, str]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


class OutboxActionRow(Base):
    """One effect to deliver to an external system: a write-back, task or notification.

    `marker` is written into the record with the effect, so a delivery repeated
    after a crash finds the effect already in the record and skips it.
    """

    __tablename__ = "outbox_actions"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'in_flight', 'done', 'dead')", name="status"
        ),
        CheckConstraint("kind IN ('write_back', 'task', 'notification')", name="kind"),
        Index("ix_outbox_actions_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system: Mapped[str] = mapped_column(String(40))
    instance: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    ticket_key: Mapped[str] = mapped_column(String(300))
    record_id: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    marker: Mapped[str] = mapped_column(String(255), unique=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"))
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LeaseRow(Base):
    """A named lease that one holder owns until it expires, such as "scheduler"."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobRunRow(Base):
    """One run of a periodic job; the primary key lets one replica claim each slot."""

    __tablename__ = "job_runs"

    job: Mapped[str] = mapped_column(String(100), primary_key=True)
    slot_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConnectorStateRow(Base):
    """Poll progress, go-live switches and health of one connector instance.

    `cursor` contains `seen`: the `record_key@record_version` strings of records
    polled within the overlap window before the watermark, each with its change
    time, so the next poll skips them.
    """

    __tablename__ = "connector_state"

    system: Mapped[str] = mapped_column(String(40), primary_key=True)
    instance: Mapped[str] = mapped_column(String(100), primary_key=True)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cursor: Mapped[dict[str, Any]] = mapped_column(JSONType)
    paused: Mapped[bool] = mapped_column(Boolean)
    observe_only: Mapped[bool] = mapped_column(Boolean)
    healthy: Mapped[bool] = mapped_column(Boolean)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Consecutive failed polls, which set the backoff before the next one.
    failures: Mapped[int] = mapped_column(Integer)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SlackMessageRow(Base):
    """The Slack message posted for a ticket, so that later changes update it in place.

    `kind` is "escalation" or "review". `payload` is the notification the message
    was last rendered from, and `state` the changes since then: who acknowledged,
    the group it was reassigned to, and whether it is resolved.
    """

    __tablename__ = "slack_messages"
    __table_args__ = (
        UniqueConstraint(
            "ticket_key", "kind", name="uq_slack_messages_ticket_key_kind"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(100))
    ts: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    state: Mapped[dict[str, Any]] = mapped_column(JSONType)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SlackRequestRow(Base):
    """A Slack request already acted on, keyed so that a repeat is recognized.

    Keys are the event id of an Events API delivery, or the user, message and
    action of a button click, or the user, channel and text of a command.
    """

    __tablename__ = "slack_requests"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


tickets = cast(Table, TicketRow.__table__)
decisions = cast(Table, DecisionRow.__table__)
review_items = cast(Table, ReviewItemRow.__table__)
models = cast(Table, ModelRow.__table__)
audit_log = cast(Table, AuditLogRow.__table__)
inbox_events = cast(Table, InboxEventRow.__table__)
outbox_actions = cast(Table, OutboxActionRow.__table__)
leases = cast(Table, LeaseRow.__table__)
job_runs = cast(Table, JobRunRow.__table__)
connector_state = cast(Table, ConnectorStateRow.__table__)
slack_messages = cast(Table, SlackMessageRow.__table__)
slack_requests = cast(Table, SlackRequestRow.__table__)


class ShadowDecisionRow(Base):
    """A shadow model's decision for a ticket, stored but never acted on."""

    __tablename__ = "shadow_decisions"
    __table_args__ = (
        Index(
            "ix_shadow_decisions_model_version_decided_at",
            "model_version",
            "decided_at",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The live decision made for the same ticket at the same time.
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"))
    ticket_key: Mapped[str] = mapped_column(String(300))
    model_version: Mapped[str] = mapped_column(String(100))
    resolver_group: Mapped[str] = mapped_column(String(255))
    confidence: Mapped[float] = mapped_column(Float)
    action: Mapped[str] = mapped_column(String(20))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)


shadow_decisions = cast(Table, ShadowDecisionRow.__table__)


class PolicyOutcomeRow(Base):
    """The rules that fired for one decision and the effects they requested."""

    __tablename__ = "policy_outcomes"
    __table_args__ = (Index("ix_policy_outcomes_ticket_key", "ticket_key"),)

    decision_id: Mapped[int] = mapped_column(
        ForeignKey("decisions.id"), primary_key=True
    )
    ticket_key: Mapped[str] = mapped_column(String(300))
    rules_fired: Mapped[list[str]] = mapped_column(JSONType)
    tasks: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    notifications: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    escalation: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[int | None] = mapped_column(Integer)
    unknown_fields: Mapped[list[str]] = mapped_column(JSONType)


class EscalationRow(Base):
    """A ticket's escalation: its level, timers and SLA clock; one active per ticket.

    `levels` and `business_hours` are copied from the policy file when the
    escalation starts, so the timers keep their plan across restarts and edits.
    """

    __tablename__ = "escalations"
    __table_args__ = (
        CheckConstraint(
            "status IN ('open', 'acknowledged', 'resolved')", name="status"
        ),
        Index(
            "uq_escalations_active_ticket_key",
            "ticket_key",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
        Index("ix_escalations_status_next_fire_at", "status", "next_fire_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_key: Mapped[str] = mapped_column(String(300))
    policy: Mapped[str] = mapped_column(String(100))
    policy_version: Mapped[str] = mapped_column(String(100))
    levels: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    level: Mapped[int] = mapped_column(Integer)
    repeats_done: Mapped[int] = mapped_column(Integer)
    notifications_sent: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    priority: Mapped[int | None] = mapped_column(Integer)
    entitlement: Mapped[str | None] = mapped_column(String(100))
    assignment_group: Mapped[str | None] = mapped_column(String(255))
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


policy_outcomes = cast(Table, PolicyOutcomeRow.__table__)
escalations = cast(Table, EscalationRow.__table__)
