"""Storage of tickets, decisions, review items, models, the audit log and the queues.

The queues are the inbox of webhook events, the outbox of actions to deliver, and
the leases and job slots that let one replica run the scheduled jobs.

SQLAlchemy 2 on SQLite (the default, one file) or PostgreSQL, with the schema managed
by Alembic revisions shipped inside this package. Functions take a `Session` and
never commit; the caller owns the transaction:

    engine = make_engine("sqlite:///opsroute.db")
    upgrade(engine)
    with session_factory(engine).begin() as session:
        save_decisions(session, items=[(ticket, decision)])
"""

from __future__ import annotations

from router.store.db import (
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    pending_migrations,
    session_factory,
    upgrade,
)
from router.store.errors import (
    ActionNotDeadError,
    ActionNotFoundError,
    AmbiguousTicketError,
    ModelNotFoundError,
    ModelVersionConflictError,
    NoPreviousModelError,
    ReviewNotFoundError,
    StoreError,
    TicketNotFoundError,
    UnsupportedDatabaseError,
)
from router.store.inbox import (
    NewInboxEvent,
    claim_inbox_events,
    count_pending_inbox,
    dedupe_key,
    insert_inbox_events,
    mark_inbox_done,
)
from router.store.leases import (
    acquire_lease,
    claim_job_slot,
    get_lease,
    job_slot_start,
    prune_job_runs,
    release_lease,
)
from router.store.outbox import (
    NewOutboxAction,
    claim_due_actions,
    count_actions,
    enqueue_actions,
    get_action,
    list_actions,
    mark_action_done,
    mark_actions_done,
    park_action_dead,
    reschedule_action,
    retry_action,
)
from router.store.records import (
    ActionKind,
    ActionStatus,
    AuditEntry,
    AuditEvent,
    DecisionRecord,
    InboxEvent,
    InboxStatus,
    Lease,
    ModelInfo,
    ModelRecord,
    ModelState,
    OutboxAction,
    ReviewItemRecord,
    TicketRecord,
)
from router.store.registry import (
    activate_model,
    find_active_model,
    find_model_by_data_hash,
    find_shadow_model,
    list_models,
    load_model_record,
    rollback_model,
    save_model,
)
from router.store.reviews import list_open_reviews, resolve_review
from router.store.service import (
    MODEL_INPUT_FIELDS,
    append_audit,
    find_ticket,
    latest_decision,
    save_decisions,
    ticket_trail,
)

__all__ = [
    "MODEL_INPUT_FIELDS",
    "ActionKind",
    "ActionNotDeadError",
    "ActionNotFoundError",
    "ActionStatus",
    "AmbiguousTicketError",
    "AuditEntry",
    "AuditEvent",
    "DecisionRecord",
    "InboxEvent",
    "InboxStatus",
    "Lease",
    "ModelInfo",
    "ModelNotFoundError",
    "ModelRecord",
    "ModelState",
    "ModelVersionConflictError",
    "NewInboxEvent",
    "NewOutboxAction",
    "NoPreviousModelError",
    "OutboxAction",
    "ReviewItemRecord",
    "ReviewNotFoundError",
    "StoreError",
    "TicketNotFoundError",
    "TicketRecord",
    "UnsupportedDatabaseError",
    "acquire_lease",
    "activate_model",
    "alembic_config",
    "append_audit",
    "claim_due_actions",
    "claim_inbox_events",
    "claim_job_slot",
    "count_actions",
    "count_pending_inbox",
    "current_revision",
    "dedupe_key",
    "downgrade",
    "enqueue_actions",
    "find_active_model",
    "find_model_by_data_hash",
    "find_shadow_model",
    "find_ticket",
    "get_action",
    "get_lease",
    "head_revision",
    "insert_inbox_events",
    "job_slot_start",
    "latest_decision",
    "list_actions",
    "list_models",
    "list_open_reviews",
    "load_model_record",
    "make_engine",
    "mark_action_done",
    "mark_actions_done",
    "mark_inbox_done",
    "park_action_dead",
    "pending_migrations",
    "prune_job_runs",
    "release_lease",
    "reschedule_action",
    "resolve_review",
    "retry_action",
    "rollback_model",
    "save_decisions",
    "save_model",
    "session_factory",
    "ticket_trail",
    "upgrade",
]
