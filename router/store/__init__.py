"""Storage of tickets, decisions, review items, models and the audit log.

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
    AmbiguousTicketError,
    ModelNotFoundError,
    ModelVersionConflictError,
    ReviewNotFoundError,
    StoreError,
    TicketNotFoundError,
    UnsupportedDatabaseError,
)
from router.store.records import (
    AuditEntry,
    AuditEvent,
    DecisionRecord,
    ModelInfo,
    ModelRecord,
    ReviewItemRecord,
    TicketRecord,
)
from router.store.registry import (
    activate_model,
    find_model_by_data_hash,
    list_models,
    load_model_record,
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
    "AmbiguousTicketError",
    "AuditEntry",
    "AuditEvent",
    "DecisionRecord",
    "ModelInfo",
    "ModelNotFoundError",
    "ModelRecord",
    "ModelVersionConflictError",
    "ReviewItemRecord",
    "ReviewNotFoundError",
    "StoreError",
    "TicketNotFoundError",
    "TicketRecord",
    "UnsupportedDatabaseError",
    "activate_model",
    "alembic_config",
    "append_audit",
    "current_revision",
    "downgrade",
    "find_model_by_data_hash",
    "find_ticket",
    "head_revision",
    "latest_decision",
    "list_models",
    "list_open_reviews",
    "load_model_record",
    "make_engine",
    "pending_migrations",
    "resolve_review",
    "save_decisions",
    "save_model",
    "session_factory",
    "ticket_trail",
    "upgrade",
]
