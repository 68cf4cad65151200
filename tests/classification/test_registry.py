"""Models stored through the store on SQLite and PostgreSQL, with the disk cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from router.classification.features import ModelInput
from router.classification.model import RoutingModel
from router.classification.registry import has_model, load_model, save_model
from router.store.errors import ModelNotFoundError
from router.store.models import models
from router.store.registry import load_model_record

SAMPLE_INPUTS = [
    ModelInput(title="printer is jammed"),
    ModelInput(title="password expired", issue_type="Incident"),
    ModelInput(title="please help asap"),
]


def cache_file(cache_dir: Path, model: RoutingModel) -> Path:
    return cache_dir / "models" / f"{model.version}.bin"


def store(session: Session, model: RoutingModel, *, activate: bool = True) -> None:
    save_model(session, model, activate=activate)
    session.commit()


def test_stored_model_loads_same_predictions(
    session: Session, tiny_model: RoutingModel, tmp_path: Path
) -> None:
    store(session, tiny_model)
    loaded = load_model(session, cache_dir=tmp_path, version=tiny_model.version)
    expected, _ = tiny_model.predict(SAMPLE_INPUTS)
    actual, _ = loaded.predict(SAMPLE_INPUTS)
    assert actual == expected


def test_first_load_writes_disk_cache(
    session: Session, tiny_model: RoutingModel, tmp_path: Path
) -> None:
    store(session, tiny_model)
    load_model(session, cache_dir=tmp_path, version=tiny_model.version)
    record = load_model_record(session, version=tiny_model.version)
    cached = cache_file(tmp_path, tiny_model)
    assert cached.is_file()
    assert cached.read_bytes() == record.artefact


def test_cached_model_loads_without_store_row(
    session: Session, tiny_model: RoutingModel, tmp_path: Path
) -> None:
    store(session, tiny_model)
    first = load_model(session, cache_dir=tmp_path, version=tiny_model.version)
    session.execute(delete(models).where(models.c.version == tiny_model.version))
    session.commit()
    second = load_model(session, cache_dir=tmp_path, version=tiny_model.version)
    assert second.version == tiny_model.version
    assert second.predict(SAMPLE_INPUTS)[0] == first.predict(SAMPLE_INPUTS)[0]


def test_corrupt_cache_falls_back_to_store(
    session: Session, tiny_model: RoutingModel, tmp_path: Path
) -> None:
    store(session, tiny_model)
    cached = cache_file(tmp_path, tiny_model)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not a model artefact")
    loaded = load_model(session, cache_dir=tmp_path, version=tiny_model.version)
    assert loaded.version == tiny_model.version


def test_active_model_loads_without_version(
    session: Session, tiny_model: RoutingModel, tmp_path: Path
) -> None:
    store(session, tiny_model, activate=True)
    loaded = load_model(session, cache_dir=tmp_path, dataset="tiny")
    assert loaded.version == tiny_model.version


def test_inactive_model_is_not_loaded_by_default(
    session: Session, tiny_model: RoutingModel, tmp_path: Path
) -> None:
    store(session, tiny_model, activate=False)
    with pytest.raises(ModelNotFoundError) as caught:
        load_model(session, cache_dir=tmp_path, dataset="tiny")
    assert "No active 'routing' model for dataset 'tiny'" in str(caught.value)


def test_has_model_reports_stored_versions(
    session: Session, tiny_model: RoutingModel
) -> None:
    assert not has_model(session, version=tiny_model.version)
    store(session, tiny_model)
    assert has_model(session, version=tiny_model.version)


def test_unknown_version_raises_not_found(session: Session, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        load_model(session, cache_dir=tmp_path, version="tiny-000000000000")
    assert "'tiny-000000000000'" in str(caught.value)


def test_saving_twice_keeps_one_model(
    session: Session, tiny_model: RoutingModel, tmp_path: Path
) -> None:
    store(session, tiny_model)
    store(session, tiny_model)
    rows = session.execute(
        models.select().where(models.c.version == tiny_model.version)
    ).all()
    assert len(rows) == 1
