"""`opsroute train`, `opsroute evaluate` and `opsroute model`: build, measure and
promote routing models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from router.classification.evaluation import (
    ModelFigures,
    figures_json,
    hold_out,
    measure_model,
    measure_reference,
    train_on,
)
from router.classification.registry import save_model
from router.classification.training import TrainingError, TrainingParams
from router.cli.common import fail, open_session, print_json, settings
from router.cli.promotion import (
    describe_thresholds,
    model_group,
    with_store_labels,
    write_thresholds,
)
from router.datasets.catalog import (
    DATASETS,
    Example,
    LabelLeakError,
    load_csv_examples,
    load_examples,
)
from router.mapping import load_mappings
from router.settings import CoreSettings

__all__ = ["evaluate", "model_group", "train"]


def _examples(
    dataset: str, csv_file: Path | None, text: str | None, label: str | None
) -> tuple[str, list[Example]]:
    if csv_file is None:
        return dataset, load_examples(dataset)
    if not text or not label:
        fail("--csv needs --text COLUMNS (comma-separated) and --label COLUMN.")
    columns = [c.strip() for c in (text or "").split(",") if c.strip()]
    try:
        examples = load_csv_examples(
            csv_file, text_columns=columns, label_column=label or ""
        )
    except (LabelLeakError, ValueError) as error:
        fail(str(error))
    return csv_file.stem, examples


def _source_options(command: Callable[..., None]) -> Callable[..., None]:
    options = [
        click.option(
            "--dataset",
            type=click.Choice(sorted(DATASETS)),
            default="apache-jira",
            show_default=True,
            help="Bundled dataset (ignored with --csv).",
        ),
        click.option(
            "--csv",
            "csv_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Train on your own CSV export instead.",
        ),
        click.option(
            "--text", help="With --csv: comma-separated text columns, joined in order."
        ),
        click.option(
            "--label", help="With --csv: the column that contains the resolver group."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@_source_options
@click.option(
    "--from-store",
    is_flag=True,
    help="Add the labels people gave stored tickets: resolving groups, reviews, "
    "overrides and transfers.",
)
@click.option(
    "--activate/--no-activate",
    default=None,
    help="Make the new model active at once, or keep it in shadow. By default the "
    "first model of a dataset is active and later ones run in shadow.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print only one JSON object to stdout."
)
def train(
    dataset: str,
    csv_file: Path | None,
    text: str | None,
    label: str | None,
    from_store: bool,
    activate: bool | None,
    as_json: bool,
) -> None:
    """Train a model on 80% of the data, measure it on the rest, and store it."""
    name, examples = _examples(dataset, csv_file, text, label)
    params = TrainingParams()
    core = settings()
    store_labels: dict[str, object] = {}
    if from_store:
        examples, store_labels = _with_store_labels(core, examples)
    try:
        split = hold_out(examples, params=params)
        model = train_on(split.train, dataset=name, params=params)
    except TrainingError as error:
        fail(str(error))
    threshold = load_mappings(core.mappings_dir).thresholds.default
    measured = measure_model(model, split.test, threshold=threshold)
    model.card.metrics["held_out"] = figures_json(measured)
    with open_session(core) as session, session.begin():
        stored = save_model(session, model, activate=activate)
    result = {
        "model_version": model.version,
        "dataset": name,
        "examples": len(examples),
        "train": len(split.train),
        "test": len(split.test),
        "skipped_labels": split.skipped_labels,
        "active": stored.active,
        "state": stored.state,
        **figures_json(measured),
    }
    if from_store:
        result["store_labels"] = store_labels
    if as_json:
        print_json(result)
        return
    click.echo(f"Stored model {model.version} ({stored.state}).")
    if stored.state == "shadow":
        click.echo(
            "  it decides in shadow; promote it with "
            f"`opsroute model promote {model.version}`"
        )
    if from_store:
        click.echo(f"  labels from the store: {store_labels}")
    click.echo(
        f"  trained on {len(split.train)} examples, "
        f"measured on {len(split.test)} held out"
    )
    click.echo(
        f"  accuracy {measured.figures.accuracy:.4f}, "
        f"macro-F1 {measured.figures.macro_f1:.4f}"
    )
    if measured.auto_route is not None:
        click.echo(_auto_line(measured))
    if split.skipped_labels:
        click.echo(f"  left out (too few examples): {split.skipped_labels}")


@click.command()
@_source_options
@click.option(
    "--thresholds",
    "thresholds_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write per-group thresholds that keep the target auto-route precision on "
    "held-out data to this file, in the format of mappings/thresholds.yaml.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print only one JSON object to stdout."
)
def evaluate(
    dataset: str,
    csv_file: Path | None,
    text: str | None,
    label: str | None,
    thresholds_file: Path | None,
    as_json: bool,
) -> None:
    """Compare our model with the reference recipe on the same 80/20 split (seed 0)."""
    name, examples = _examples(dataset, csv_file, text, label)
    params = TrainingParams()
    try:
        split = hold_out(examples, params=params)
        model = train_on(split.train, dataset=name, params=params)
    except TrainingError as error:
        fail(str(error))
    mappings = load_mappings(settings().mappings_dir)
    threshold = mappings.thresholds.default
    if thresholds_file is not None:
        written = write_thresholds(
            model, split.test, mappings=mappings, path=thresholds_file
        )
        if as_json:
            print_json(written)
        else:
            click.echo(describe_thresholds(written, path=thresholds_file))
        return
    ours = measure_model(model, split.test, threshold=threshold)
    reference = measure_reference(split.train, split.test)
    if as_json:
        print_json(
            {
                "dataset": name,
                "test": len(split.test),
                "opsroute": figures_json(ours),
                "reference": figures_json(reference),
            }
        )
        return
    click.echo(
        f"Dataset {name}: {len(split.train)} training and "
        f"{len(split.test)} held-out tickets"
    )
    click.echo(f"  {'':<24} {'opsroute':>9} {'reference':>9}")
    click.echo(
        f"  {'accuracy':<24} {ours.figures.accuracy:>9.4f} "
        f"{reference.figures.accuracy:>9.4f}"
    )
    click.echo(
        f"  {'macro-F1':<24} {ours.figures.macro_f1:>9.4f} "
        f"{reference.figures.macro_f1:>9.4f}"
    )
    click.echo(_auto_line(ours))
    click.echo("")
    click.echo(f"  {'group F1':<24} {'opsroute':>9} {'reference':>9} {'tickets':>8}")
    theirs = {g.group: g for g in reference.figures.groups}
    for group in ours.figures.groups:
        other = theirs.get(group.group)
        shown = f"{other.f1:>9.4f}" if other else f"{'n/a':>9}"
        click.echo(f"  {group.group:<24} {group.f1:>9.4f} {shown} {group.support:>8}")


def _with_store_labels(
    core: CoreSettings, examples: list[Example]
) -> tuple[list[Example], dict[str, object]]:
    with open_session(core) as session:
        return with_store_labels(session, examples)


def _auto_line(measured: ModelFigures) -> str:
    auto = measured.auto_route
    if auto is None:
        return ""
    precision = "n/a" if auto.precision is None else f"{auto.precision:.4f}"
    return (
        f"  at threshold {auto.threshold:.2f}: auto-routes {auto.share:.4f} "
        f"of tickets with precision {precision}"
    )
