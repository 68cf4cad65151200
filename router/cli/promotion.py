"""`opsroute model list|promote|rollback`, and the learning-loop helpers of train
and evaluate: labels from the store and per-group thresholds."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import yaml
from sqlalchemy.orm import Session

from router.analytics.labels import collect_labels, count_sources, unknown_labels
from router.classification.features import input_from_example
from router.classification.model import RoutingModel
from router.classification.registry import MODEL_KIND
from router.classification.thresholds import choose_thresholds
from router.cli.common import fail, open_session, print_json, settings
from router.datasets.catalog import Example
from router.mapping import MappingSet, load_mappings
from router.store.errors import ModelNotFoundError, NoPreviousModelError
from router.store.records import ModelInfo, ModelState
from router.store.registry import (
    activate_model,
    find_active_model,
    list_models,
    rollback_model,
)


def with_store_labels(
    session: Session, examples: list[Example]
) -> tuple[list[Example], dict[str, Any]]:
    """Add the stored tickets' labels to the examples and describe what was added.

    Returns:
        The combined examples and a summary: counts per source, and the labels the
        active model has never seen.
    """
    labels = collect_labels(session)
    active = find_active_model(session, kind=MODEL_KIND)
    known = set(active.label_set) if active is not None else set()
    summary: dict[str, Any] = {
        "tickets": len(labels),
        "sources": count_sources(labels),
        "unknown_to_active_model": unknown_labels(labels, known=known),
    }
    return [*examples, *(label.example for label in labels)], summary


def write_thresholds(
    model: RoutingModel,
    test: Sequence[Example],
    *,
    mappings: MappingSet,
    path: Path,
) -> dict[str, Any]:
    """Choose per-group thresholds on the held-out examples and write the file.

    Groups that the taxonomy does not list are left out, because the mapping loader
    rejects them. Groups where no threshold reaches the target keep the default.

    Returns:
        What was written and what was left out, as JSON-ready data.
    """
    predictions, _ = model.predict([input_from_example(example) for example in test])
    current = mappings.thresholds
    chosen = choose_thresholds(
        [p.group for p in predictions],
        [p.confidence for p in predictions],
        [example.label for example in test],
        target=current.target_auto_route_precision,
    )
    taxonomy = set(mappings.taxonomy.group_names)
    groups = {
        item.group: item.threshold
        for item in chosen
        if item.threshold is not None and item.group in taxonomy
    }
    content = {
        "version": f"{current.version or 'unversioned'}+{model.version}",
        "default": current.default,
        "groups": groups,
        "review_candidates": current.review_candidates,
        "target_auto_route_precision": current.target_auto_route_precision,
        "force_review_intents": list(current.force_review_intents),
    }
    header = (
        "# Per-group thresholds chosen by `opsroute evaluate --thresholds` for\n"
        f"# model {model.version}: the lowest of 0.50..0.99 that kept each\n"
        "# group's held-out auto-route precision at "
        f"{current.target_auto_route_precision}.\n"
        "# Review them, then copy this file over thresholds.yaml in\n"
        "# OPSROUTE_MAPPINGS_DIR.\n"
    )
    try:
        path.write_text(header + yaml.safe_dump(content, sort_keys=False), "utf-8")
    except OSError as error:
        fail(f"Cannot write the thresholds to {path}: {error.strerror}.")
    return {
        "path": str(path),
        "model_version": model.version,
        "target_auto_route_precision": current.target_auto_route_precision,
        "groups": {
            item.group: {
                "threshold": item.threshold,
                "precision": item.precision,
                "auto_routed": item.auto_routed,
                "predicted": item.predicted,
                "written": item.group in groups,
            }
            for item in chosen
        },
    }


def describe_thresholds(written: dict[str, Any], *, path: Path) -> str:
    """Format what `write_thresholds` chose, one group a line."""
    lines = [
        f"Wrote per-group thresholds to {path} "
        f"(target precision {written['target_auto_route_precision']}):",
        f"  {'group':<24} {'threshold':>9} {'precision':>9} {'routed':>7} {'of':>5}",
    ]
    for group, row in written["groups"].items():
        if row["threshold"] is None:
            shown = "none reaches the target; default kept"
            lines.append(f"  {group:<24} {shown}")
            continue
        note = "" if row["written"] else "  (not in the taxonomy, left out)"
        lines.append(
            f"  {group:<24} {row['threshold']:>9.2f} {row['precision']:>9.4f} "
            f"{row['auto_routed']:>7} {row['predicted']:>5}{note}"
        )
    return "\n".join(lines)


@click.group("model")
def model_group() -> None:
    """List, promote and roll back the stored routing models."""


@model_group.command("list")
@click.option(
    "--json", "as_json", is_flag=True, help="Print only one JSON object to stdout."
)
def list_command(as_json: bool) -> None:
    """List the stored models, newest first, with their state."""
    with open_session(settings()) as session:
        infos = list_models(session, kind=MODEL_KIND)
    if as_json:
        print_json({"models": [_info_json(info) for info in infos]})
        return
    if not infos:
        click.echo("No models are stored; run opsroute train or opsroute demo.")
        return
    click.echo(
        f"  {'version':<28} {'state':<9} {'dataset':<16} {'precision':>9}  created"
    )
    for info in infos:
        precision = _held_out_precision(info)
        shown = "n/a" if precision is None else f"{precision:.4f}"
        click.echo(
            f"  {info.version:<28} {info.state:<9} {info.dataset:<16} {shown:>9}  "
            f"{info.created_at:%Y-%m-%d %H:%M}"
        )


@model_group.command()
@click.argument("version")
def promote(version: str) -> None:
    """Make the shadow (or any stored) model VERSION the active one.

    Rejected when the model's held-out auto-route precision is below
    target_auto_route_precision in thresholds.yaml. The model it replaces becomes
    previous, so `opsroute model rollback` returns to it.
    """
    core = settings()
    target = load_mappings(core.mappings_dir).thresholds.target_auto_route_precision
    with open_session(core) as session, session.begin():
        chosen = _find(session, version)
        if chosen.state == ModelState.ACTIVE:
            fail(f"Model {version} is already active.")
        precision = _held_out_precision(chosen)
        if precision is None:
            fail(
                f"Model {version} has no held-out auto-route precision, so it cannot "
                "be checked against the target; train it with opsroute train."
            )
        elif precision < target:
            fail(
                f"Model {version} auto-routes held-out tickets with precision "
                f"{precision:.4f}, below the target {target}; promotion rejected. "
                "Train on more labels or raise the threshold."
            )
        before = find_active_model(session, kind=MODEL_KIND, dataset=chosen.dataset)
        activate_model(session, version=version, actor=_actor())
    click.echo(f"Promoted {version} (held-out precision {precision:.4f}).")
    if before is not None:
        learned = sorted(set(chosen.label_set) - set(before.label_set))
        click.echo(f"  replaced {before.version}, which is now previous")
        if learned:
            click.echo(
                f"  groups the new model routes that the old one could not: {learned}"
            )


@model_group.command()
@click.option(
    "--dataset", help="Roll back the model of this dataset (default: newest)."
)
def rollback(dataset: str | None) -> None:
    """Make the previous model active again and retire the current one."""
    with open_session(settings()) as session, session.begin():
        try:
            restored = rollback_model(
                session, actor=_actor(), kind=MODEL_KIND, dataset=dataset
            )
        except (ModelNotFoundError, NoPreviousModelError) as error:
            fail(str(error))
            return
    click.echo(f"Rolled back to {restored.version}.")


def _find(session: Session, version: str) -> ModelInfo:
    for info in list_models(session, kind=MODEL_KIND):
        if info.version == version:
            return info
    fail(
        f"Model {version!r} not found; list the stored models with opsroute model list."
    )
    raise AssertionError("unreachable")


def _held_out_precision(info: ModelInfo) -> float | None:
    held_out = info.metrics.get("held_out") or {}
    value = held_out.get("auto_route_precision")
    return None if value is None else float(value)


def _info_json(info: ModelInfo) -> dict[str, Any]:
    return {
        "version": info.version,
        "state": info.state,
        "dataset": info.dataset,
        "labels": info.label_set,
        "held_out_auto_route_precision": _held_out_precision(info),
        "data_hash": info.data_hash,
        "created_at": info.created_at.isoformat(),
    }


def _actor() -> str:
    return f"cli:{getpass.getuser()}"
