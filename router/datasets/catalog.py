"""Load the bundled datasets as labelled examples that carry only model inputs."""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

logger = logging.getLogger(__name__)

# Apache changelog sections are coarse issue types; these are the Jira names agents see.
APACHE_ISSUE_TYPES = {
    "BUG FIXES": "Bug",
    "IMPROVEMENTS": "Improvement",
    "SUB-TASKS": "Sub-task",
    "OTHER": "Task",
    "NEW FEATURES": "New Feature",
    "TESTS": "Test",
    "INCOMPATIBLE CHANGES": "Incompatible Change",
    "IMPORTANT ISSUES": "Important",
}
APACHE_PRIORITIES = {"Blocker": 1, "Critical": 2, "Major": 3, "Minor": 4, "Trivial": 5}

# Every column that names or reveals the Apache team; none may reach the model.
APACHE_LEAKING_COLUMNS = (
    "key",
    "project",
    "components",
    "primary_component",
    "n_components",
    "fix_versions",
    "first_release_date",
    "release_repo_dir",
)


class LabelLeakError(ValueError):
    """A column that reveals the label was chosen as a model input."""


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled ticket: its model inputs, its label and where it came from."""

    external_id: str
    title: str
    label: str
    # 1-based position of the row in its file, which numbers the demo's records.
    row: int = 0
    description: str = ""
    issue_type: str | None = None
    priority_name: str | None = None
    priority: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """A bundled dataset: its file, its label and the columns the model may not read."""

    name: str
    package: str
    filename: str
    label_column: str
    # Added to each row's position to number its demo records, so that two datasets
    # never share record ids.
    record_offset: int
    input_columns: tuple[str, ...]
    leaking_columns: tuple[str, ...] = field(default=())
    licence: str = ""

    def path(self) -> Path:
        """Return the data file's path inside the installed package."""
        return Path(str(resources.files(self.package).joinpath(self.filename)))


DATASETS = {
    "apache-jira": DatasetInfo(
        name="apache-jira",
        package="router.datasets.apache_jira",
        filename="issues.csv.gz",
        label_column="project",
        record_offset=0,
        input_columns=("summary", "issue_type", "priority"),
        leaking_columns=APACHE_LEAKING_COLUMNS,
        licence="Apache License 2.0 (ASF JIRA, via Apache Yetus releasedocmaker)",
    ),
    "helpdesk": DatasetInfo(
        name="helpdesk",
        package="router.datasets.helpdesk",
        filename="all_tickets_processed_improved_v3.partial.csv",
        label_column="Topic_group",
        record_offset=1_000_000,
        input_columns=("Document",),
        licence="not stated: internal evaluation only",
    ),
}


def check_no_label_leak(
    input_columns: Sequence[str], *, label_column: str, leaking: Sequence[str] = ()
) -> None:
    """Reject input columns that are the label or reveal it.

    Raises:
        LabelLeakError: naming each offending column.
    """
    bad = [c for c in input_columns if c == label_column or c in leaking]
    if bad:
        raise LabelLeakError(
            f"column(s) {', '.join(repr(c) for c in bad)} reveal the label "
            f"{label_column!r} and cannot be model inputs; use only what a new ticket "
            "carries (title, description, issue type, priority)."
        )


def get_dataset(name: str) -> DatasetInfo:
    """Return a bundled dataset by name.

    Raises:
        KeyError: for an unknown name, listing the known ones.
    """
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise KeyError(f"unknown dataset {name!r}; expected one of {known}") from None


def load_examples(name: str) -> list[Example]:
    """Load a bundled dataset as examples, dropping rows that have no label."""
    info = get_dataset(name)
    check_no_label_leak(
        info.input_columns, label_column=info.label_column, leaking=info.leaking_columns
    )
    with _open_text(info.path()) as handle:
        rows = csv.DictReader(handle)
        if name == "apache-jira":
            examples = list(_apache_examples(rows))
        else:
            examples = list(_helpdesk_examples(rows))
    logger.info("Loaded %d examples from dataset %s", len(examples), name)
    return examples


def _open_text(path: Path) -> io.TextIOWrapper:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115


def _apache_examples(rows: Iterator[dict[str, str]]) -> Iterator[Example]:
    for number, row in enumerate(rows, start=1):
        label = row.get("project") or ""
        if not label:
            continue
        priority_name = row.get("priority") or None
        released = row.get("first_release_date") or ""
        yield Example(
            external_id=row["key"],
            title=row.get("summary") or "",
            label=label,
            row=number,
            issue_type=APACHE_ISSUE_TYPES.get(row.get("issue_type") or ""),
            priority_name=priority_name,
            priority=APACHE_PRIORITIES.get(priority_name or ""),
            created_at=_parse_release_date(released),
        )


def _helpdesk_examples(rows: Iterator[dict[str, str]]) -> Iterator[Example]:
    for number, row in enumerate(rows, start=1):
        label = (row.get("Topic_group") or "").strip()
        if not label:
            continue
        title, description = split_title(row.get("Document") or "")
        yield Example(
            external_id=f"HD-{number:05d}",
            title=title,
            description=description,
            label=label,
            row=number,
        )


def split_title(text: str, *, max_words: int = 12) -> tuple[str, str]:
    """Split one text into a title of its first words and the rest as description."""
    words = text.split()
    return " ".join(words[:max_words]), " ".join(words[max_words:])


def _parse_release_date(value: str) -> datetime | None:
    # NOTE: Changelogs give release dates, not creation dates; unreleased rows
    # have none.
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


def load_csv_examples(
    path: Path, *, text_columns: Sequence[str], label_column: str
) -> list[Example]:
    """Load an admin's CSV export: text columns joined in order, and one label column.

    Raises:
        LabelLeakError: the label column is also a text column.
        ValueError: a named column is missing from the file, listing the columns it has.
    """
    check_no_label_leak(text_columns, label_column=label_column)
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in (*text_columns, label_column) if c not in header]
        if missing:
            raise ValueError(
                f"{path}: column(s) {', '.join(map(repr, missing))} not found; "
                f"the file has {', '.join(map(repr, header))}."
            )
        examples = []
        for number, row in enumerate(reader, start=2):
            label = (row.get(label_column) or "").strip()
            if not label:
                continue
            text = " ".join((row.get(c) or "").strip() for c in text_columns).strip()
            title, description = split_title(text)
            examples.append(
                Example(
                    external_id=f"row-{number}",
                    title=title,
                    description=description,
                    label=label,
                    row=number,
                )
            )
    logger.info("Loaded %d labelled rows from %s", len(examples), path)
    return examples
