"""Trained models and their artefacts, stored in the database.

Every replica loads its model from here, so all of them route with the same
version. At most one model per (kind, dataset) is active. Like the rest of the store,
these functions never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from router.store.db import dialect_insert
from router.store.errors import ModelNotFoundError, ModelVersionConflictError
from router.store.models import models
from router.store.records import AuditEvent, ModelInfo, ModelRecord
from router.store.service import append_audit

logger = logging.getLogger(__name__)

_INFO_COLUMNS = [column for column in models.c if column.name != "artefact"]


def save_model(
    session: Session,
    *,
    version: str,
    kind: str,
    dataset: str,
    label_set: Sequence[str],
    metrics: Mapping[str, Any],
    params: Mapping[str, Any],
    data_hash: str,
    artefact: bytes,
    activate: bool,
    actor: str = "opsroute",
) -> None:
    """Store a trained model under `version`, and make it active if asked.

    Saving a version that is already stored with the same kind, dataset and data hash
    changes nothing but its activation, so a retried training run is harmless. A new
    version appends a "model_trained" audit row.

    Raises:
        ModelVersionConflictError: the version is stored with another kind, dataset
            or data hash.
    """
    if not version:
        raise ValueError("Model version is empty; pass a version such as '2025.01.1'.")
    query = select(*_INFO_COLUMNS).where(models.c.version == version)
    stored = _info(session, query)
    inserted = False
    if stored is None:
        # DO NOTHING keeps a concurrent save of the same version from failing.
        stmt = dialect_insert(session, models).on_conflict_do_nothing(
            index_elements=[models.c.version]
        )
        row = {
            "version": version,
            "kind": kind,
            "dataset": dataset,
            "label_set": list(label_set),
            "metrics": dict(metrics),
            "params": dict(params),
            "data_hash": data_hash,
            "artefact": artefact,
            "created_at": datetime.now(UTC),
            "active": False,
        }
        inserted_id = session.execute(stmt.returning(models.c.id), row).scalar()
        inserted = inserted_id is not None
        stored = _info(session, query)
    if stored is None:
        raise RuntimeError(f"Model version {version!r} vanished right after saving.")

    for field, given in (
        ("kind", kind),
        ("dataset", dataset),
        ("data_hash", data_hash),
    ):
        if getattr(stored, field) != given:
            raise ModelVersionConflictError(version, field)

    if inserted:
        append_audit(
            session,
            event=AuditEvent.MODEL_TRAINED,
            ticket_key=None,
            actor=actor,
            inputs={"dataset": dataset, "data_hash": data_hash, "params": dict(params)},
            versions={"model": version},
            details={
                "kind": kind,
                "metrics": dict(metrics),
                "labels": len(label_set),
                "artefact_bytes": len(artefact),
            },
        )
        logger.info("Stored %s model %s (%d bytes)", kind, version, len(artefact))
    if activate and not stored.active:
        activate_model(session, version=version, actor=actor)


def activate_model(session: Session, *, version: str, actor: str) -> ModelInfo:
    """Make `version` the active model of its kind and dataset.

    Raises:
        ModelNotFoundError: no model has that version.
    """
    stored = _info(session, select(*_INFO_COLUMNS).where(models.c.version == version))
    if stored is None:
        raise ModelNotFoundError(version=version, kind=None, dataset=None)
    if stored.active:
        return stored

    # Deactivate first, because the partial unique index allows one active row.
    session.execute(
        update(models)
        .where(
            models.c.kind == stored.kind,
            models.c.dataset == stored.dataset,
            models.c.active.is_(True),
        )
        .values(active=False)
    )
    session.execute(update(models).where(models.c.id == stored.id).values(active=True))
    append_audit(
        session,
        event=AuditEvent.MODEL_ACTIVATED,
        ticket_key=None,
        actor=actor,
        versions={"model": version},
        details={"kind": stored.kind, "dataset": stored.dataset},
    )
    logger.info("Activated %s model %s for %s", stored.kind, version, stored.dataset)
    refreshed = _info(session, select(*_INFO_COLUMNS).where(models.c.id == stored.id))
    if refreshed is None:
        raise RuntimeError(f"Model version {version!r} vanished while activating.")
    return refreshed


def load_model_record(
    session: Session,
    *,
    version: str | None = None,
    kind: str = "routing",
    dataset: str | None = None,
) -> ModelRecord:
    """Load a model with its artefact.

    Args:
        version: the version to load; None loads the active model.
        kind: the model kind, such as "routing".
        dataset: restricts the match to models trained on that dataset. With no
            version and no dataset, the newest active model of the kind is loaded.

    Raises:
        ModelNotFoundError: nothing matches.
    """
    query = select(models).where(models.c.kind == kind)
    if version is not None:
        query = query.where(models.c.version == version)
    else:
        query = query.where(models.c.active.is_(True))
    if dataset is not None:
        query = query.where(models.c.dataset == dataset)
    row = session.execute(
        query.order_by(models.c.created_at.desc(), models.c.id.desc()).limit(1)
    ).first()
    if row is None:
        raise ModelNotFoundError(version=version, kind=kind, dataset=dataset)
    return ModelRecord(**row._mapping)


def find_model_by_data_hash(
    session: Session, *, data_hash: str, kind: str
) -> ModelInfo | None:
    """Return the newest model of `kind` trained on data with this hash, if any."""
    return _info(
        session,
        select(*_INFO_COLUMNS)
        .where(models.c.kind == kind, models.c.data_hash == data_hash)
        .order_by(models.c.created_at.desc(), models.c.id.desc())
        .limit(1),
    )


def list_models(session: Session, *, kind: str | None = None) -> list[ModelInfo]:
    """Return stored models without artefacts, newest first."""
    query = select(*_INFO_COLUMNS).order_by(
        models.c.created_at.desc(), models.c.id.desc()
    )
    if kind is not None:
        query = query.where(models.c.kind == kind)
    return [ModelInfo(**row._mapping) for row in session.execute(query)]


def _info(session: Session, query: Select[Any]) -> ModelInfo | None:
    row = session.execute(query).first()
    return None if row is None else ModelInfo(**row._mapping)
