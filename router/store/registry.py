"""Trained models and their artefacts, stored in the database.

Every replica loads its model from here, so all of them route with the same
version. At most one model per (kind, dataset) is active; the others are in shadow,
previous or retired state (see `ModelState`). Like the rest of the store, these
functions never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from router.store.db import dialect_insert
from router.store.errors import (
    ModelNotFoundError,
    ModelVersionConflictError,
    NoPreviousModelError,
)
from router.store.models import models
from router.store.records import AuditEvent, ModelInfo, ModelRecord, ModelState
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
    activate: bool | None,
    actor: str = "opsroute",
) -> ModelInfo:
    """Store a trained model under `version`, as the active one or in shadow.

    With `activate` None, the model becomes active when its kind and dataset have no
    active model yet, and runs in shadow otherwise. True activates it at once and
    False stores it in shadow. Saving a version that is already stored with the same
    kind, dataset and data hash changes nothing but its activation, so a retried
    training run is harmless. A new version appends a "model_trained" audit row.

    Returns:
        The stored model's metadata after the save.

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
            "state": ModelState.SHADOW.value,
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
    if activate is None:
        activate = inserted and _active(session, kind=kind, dataset=dataset) is None
    if activate and not stored.active:
        return activate_model(session, version=version, actor=actor)
    if inserted:
        logger.info("Model %s runs in shadow until it is promoted", version)
    return stored


def activate_model(session: Session, *, version: str, actor: str) -> ModelInfo:
    """Make `version` the active model of its kind and dataset.

    The model active until now becomes previous, and the former previous one is
    retired, so `rollback_model` can return to the model replaced here.

    Raises:
        ModelNotFoundError: no model has that version.
    """
    stored = _info(session, select(*_INFO_COLUMNS).where(models.c.version == version))
    if stored is None:
        raise ModelNotFoundError(version=version, kind=None, dataset=None)
    if stored.active:
        return stored

    same_line = (models.c.kind == stored.kind, models.c.dataset == stored.dataset)
    session.execute(
        update(models)
        .where(*same_line, models.c.state == ModelState.PREVIOUS.value)
        .values(state=ModelState.RETIRED.value)
    )
    # Deactivate first, because the partial unique index allows one active row.
    session.execute(
        update(models)
        .where(*same_line, models.c.active.is_(True))
        .values(active=False, state=ModelState.PREVIOUS.value)
    )
    session.execute(
        update(models)
        .where(models.c.id == stored.id)
        .values(active=True, state=ModelState.ACTIVE.value)
    )
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


def rollback_model(
    session: Session, *, actor: str, kind: str = "routing", dataset: str | None = None
) -> ModelInfo:
    """Make the previous model active again and retire the one that replaced it.

    Args:
        dataset: the dataset whose model to roll back; None takes the dataset of the
            newest active model of the kind.

    Returns:
        The model that is active now.

    Raises:
        ModelNotFoundError: the kind (and dataset) has no active model.
        NoPreviousModelError: no previous model is stored to return to.
    """
    current = _active(session, kind=kind, dataset=dataset)
    if current is None:
        raise ModelNotFoundError(version=None, kind=kind, dataset=dataset)
    same_line = (models.c.kind == kind, models.c.dataset == current.dataset)
    previous = _info(
        session,
        select(*_INFO_COLUMNS).where(
            *same_line, models.c.state == ModelState.PREVIOUS.value
        ),
    )
    if previous is None:
        raise NoPreviousModelError(kind=kind, dataset=current.dataset)

    session.execute(
        update(models)
        .where(models.c.id == current.id)
        .values(active=False, state=ModelState.RETIRED.value)
    )
    session.execute(
        update(models)
        .where(models.c.id == previous.id)
        .values(active=True, state=ModelState.ACTIVE.value)
    )
    append_audit(
        session,
        event=AuditEvent.MODEL_ROLLED_BACK,
        ticket_key=None,
        actor=actor,
        versions={"model": previous.version},
        details={
            "kind": kind,
            "dataset": current.dataset,
            "from_version": current.version,
            "to_version": previous.version,
        },
    )
    logger.info(
        "Rolled %s model back from %s to %s", kind, current.version, previous.version
    )
    restored = _info(session, select(*_INFO_COLUMNS).where(models.c.id == previous.id))
    if restored is None:
        raise RuntimeError(f"Model version {previous.version!r} vanished in rollback.")
    return restored


def find_shadow_model(
    session: Session, *, kind: str = "routing", dataset: str | None = None
) -> ModelInfo | None:
    """Return the newest model of `kind` in shadow (of `dataset`, when given)."""
    query = select(*_INFO_COLUMNS).where(
        models.c.kind == kind, models.c.state == ModelState.SHADOW.value
    )
    if dataset is not None:
        query = query.where(models.c.dataset == dataset)
    return _info(
        session, query.order_by(models.c.created_at.desc(), models.c.id.desc()).limit(1)
    )


def find_active_model(
    session: Session, *, kind: str = "routing", dataset: str | None = None
) -> ModelInfo | None:
    """Return the active model of `kind`, the newest one when no dataset is given."""
    return _active(session, kind=kind, dataset=dataset)


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


def _active(session: Session, *, kind: str, dataset: str | None) -> ModelInfo | None:
    query = select(*_INFO_COLUMNS).where(
        models.c.kind == kind, models.c.active.is_(True)
    )
    if dataset is not None:
        query = query.where(models.c.dataset == dataset)
    return _info(
        session, query.order_by(models.c.created_at.desc(), models.c.id.desc()).limit(1)
    )


def _info(session: Session, query: Select[Any]) -> ModelInfo | None:
    row = session.execute(query).first()
    return None if row is None else ModelInfo(**row._mapping)
