"""The model registry: artefacts stored in the database, one active per dataset."""

from __future__ import annotations

import os
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from router.store.errors import ModelNotFoundError, ModelVersionConflictError
from router.store.models import audit_log, models
from router.store.registry import (
    activate_model,
    find_model_by_data_hash,
    list_models,
    load_model_record,
    save_model,
)

ARTEFACT_BYTES = 6 * 1024 * 1024


def _save(session: Session, version: str, **overrides: Any) -> None:
    fields: dict[str, Any] = {
        "version": version,
        "kind": "routing",
        "dataset": "endava",
        "label_set": ["storage-team", "platform-team"],
        "metrics": {"macro_f1": 0.81},
        "params": {"C": 1.0},
        "data_hash": f"sha256:{version}",
        "artefact": f"artefact of {version}".encode(),
        "activate": True,
    }
    fields.update(overrides)
    save_model(session, **fields)


def test_multi_megabyte_artefact_round_trips(session: Session) -> None:
    artefact = os.urandom(ARTEFACT_BYTES)
    _save(session, "v1", artefact=artefact)
    session.commit()

    record = load_model_record(session, version="v1")

    assert len(record.artefact) == ARTEFACT_BYTES
    assert record.artefact == artefact


def test_loaded_model_has_metadata(session: Session) -> None:
    _save(session, "v1")

    record = load_model_record(session, version="v1")

    assert record.kind == "routing"
    assert record.dataset == "endava"
    assert record.label_set == ["storage-team", "platform-team"]
    assert record.metrics == {"macro_f1": 0.81}
    assert record.params == {"C": 1.0}
    assert record.data_hash == "sha256:v1"
    assert record.active is True


def test_repr_leaves_out_artefact(session: Session) -> None:
    _save(session, "v1", artefact=b"secret-bytes")

    assert "secret-bytes" not in repr(load_model_record(session, version="v1"))


def test_load_without_version_returns_active(session: Session) -> None:
    _save(session, "v1")
    _save(session, "v2", activate=False)

    assert load_model_record(session).version == "v1"


def test_activating_new_version_deactivates_old(session: Session) -> None:
    _save(session, "v1")
    _save(session, "v2")

    active = {info.version: info.active for info in list_models(session)}

    assert active == {"v1": False, "v2": True}
    assert load_model_record(session).version == "v2"


def test_activation_is_per_dataset(session: Session) -> None:
    _save(session, "v1", dataset="endava")
    _save(session, "v2", dataset="apache-jira")

    assert load_model_record(session, dataset="endava").version == "v1"
    assert load_model_record(session, dataset="apache-jira").version == "v2"


def test_activate_model_switches_back(session: Session) -> None:
    _save(session, "v1")
    _save(session, "v2")

    info = activate_model(session, version="v1", actor="cli:alice")

    assert info.active is True
    assert load_model_record(session).version == "v1"


def test_saving_same_version_is_idempotent(session: Session) -> None:
    _save(session, "v1")
    _save(session, "v1")

    trained = session.execute(
        select(func.count()).where(audit_log.c.event == "model_trained")
    ).scalar_one()

    assert session.execute(select(func.count()).select_from(models)).scalar_one() == 1
    assert trained == 1


def test_resave_can_activate_stored_version(session: Session) -> None:
    _save(session, "v1", activate=False)
    _save(session, "v1", activate=True)

    assert load_model_record(session).version == "v1"


def test_same_version_with_other_data_conflicts(session: Session) -> None:
    _save(session, "v1")

    with pytest.raises(ModelVersionConflictError, match="different data_hash"):
        _save(session, "v1", data_hash="sha256:other")


def test_saving_appends_trained_audit_row(session: Session) -> None:
    _save(session, "v1", artefact=b"12345")

    row = session.execute(
        select(audit_log).where(audit_log.c.event == "model_trained")
    ).one()

    assert row.versions == {"model": "v1"}
    assert row.details["artefact_bytes"] == 5
    assert row.inputs["data_hash"] == "sha256:v1"


def test_find_by_data_hash_returns_match(session: Session) -> None:
    _save(session, "v1")

    info = find_model_by_data_hash(session, data_hash="sha256:v1", kind="routing")

    assert info is not None
    assert info.version == "v1"


def test_find_by_data_hash_misses_other_kind(session: Session) -> None:
    _save(session, "v1")

    assert (
        find_model_by_data_hash(session, data_hash="sha256:v1", kind="urgency") is None
    )


def test_unknown_version_raises_not_found(session: Session) -> None:
    with pytest.raises(ModelNotFoundError, match="'v9' of kind 'routing' not found"):
        load_model_record(session, version="v9")


def test_no_active_model_raises_not_found(session: Session) -> None:
    _save(session, "v1", activate=False)

    with pytest.raises(ModelNotFoundError, match="No active 'routing' model"):
        load_model_record(session)


def test_activate_unknown_version_raises(session: Session) -> None:
    with pytest.raises(ModelNotFoundError, match="'v9' not found"):
        activate_model(session, version="v9", actor="cli:alice")
