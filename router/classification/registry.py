"""Store routing models in the database and cache their artefacts on disk."""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import zlib
from dataclasses import asdict
from pathlib import Path

from sqlalchemy.orm import Session

from router.classification.model import RoutingModel
from router.store import registry as store_registry
from router.store.errors import ModelNotFoundError
from router.store.records import ModelInfo

logger = logging.getLogger(__name__)

MODEL_KIND = "routing"


def save_model(
    session: Session, model: RoutingModel, *, activate: bool | None = True
) -> ModelInfo:
    """Store a trained model, as the active one of its dataset or in shadow.

    With `activate` None, the model becomes active only when its dataset has no
    active model yet; False stores it in shadow.
    """
    card = model.card
    metrics = dict(card.metrics)
    metrics["suggested_threshold"] = card.suggested_threshold
    return store_registry.save_model(
        session,
        version=card.version,
        kind=MODEL_KIND,
        dataset=card.dataset,
        label_set=card.label_set,
        metrics=metrics,
        params=card.params,
        data_hash=card.data_hash,
        artefact=model.to_bytes(),
        activate=activate,
    )


def load_model(
    session: Session,
    *,
    cache_dir: Path,
    version: str | None = None,
    dataset: str | None = None,
) -> RoutingModel:
    """Load a stored model, from the disk cache when it has that version.

    With no version, the active model is loaded (of `dataset`, when given).

    Raises:
        ModelNotFoundError: no stored model matches.
    """
    if version is None:
        version = _active_version(session, dataset=dataset)
    cached = cache_dir / "models" / f"{version}.bin"
    if cached.is_file():
        try:
            return RoutingModel.from_bytes(cached.read_bytes())
        except (
            OSError,
            ValueError,
            EOFError,
            zlib.error,
            pickle.UnpicklingError,
        ) as error:
            logger.warning("Ignoring unreadable cached model %s: %s", cached, error)
    record = store_registry.load_model_record(session, version=version, kind=MODEL_KIND)
    _write_cache(cached, record.artefact)
    return RoutingModel.from_bytes(record.artefact)


def has_model(session: Session, *, version: str) -> bool:
    """Return whether a model with this version is stored."""
    return any(
        info.version == version
        for info in store_registry.list_models(session, kind=MODEL_KIND)
    )


def _active_version(session: Session, *, dataset: str | None) -> str:
    for info in store_registry.list_models(session, kind=MODEL_KIND):
        if info.active and (dataset is None or info.dataset == dataset):
            return info.version
    raise ModelNotFoundError(version=None, kind=MODEL_KIND, dataset=dataset)


def _write_cache(path: Path, artefact: bytes) -> None:
    # Write to a temporary file first, so another process never reads half a model.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            stream.write(artefact)
        os.replace(temporary, path)
    except OSError as error:
        logger.warning("Cannot cache model at %s: %s", path, error)


def card_summary(model: RoutingModel) -> dict[str, object]:
    """Return the model card as plain data, for reports."""
    summary = asdict(model.card)
    summary["created_at"] = model.card.created_at.isoformat()
    return summary
