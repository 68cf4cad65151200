"""The `opsroute mappings validate` command."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from router.cli.mappings import mappings


def test_validate_shipped_tree_exits_zero(shipped_dir: Path) -> None:
    result = CliRunner().invoke(mappings, ["validate", str(shipped_dir)])
    assert result.exit_code == 0
    assert result.output.startswith("OK: 20 files checked in mappings (3 systems,")


def test_validate_without_dir_uses_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSROUTE_MAPPINGS_DIR", raising=False)
    result = CliRunner().invoke(mappings, ["validate"])
    assert result.exit_code == 0
    assert result.output.startswith("OK: ")


def test_validate_prints_each_problem(mapping_copy: Path) -> None:
    (mapping_copy / "thresholds.yaml").write_text(
        "default: 0.85\ngroups: {Nope: 0.9}\ncolour: blue\n", encoding="utf-8"
    )
    result = CliRunner().invoke(mappings, ["validate", str(mapping_copy)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines == [
        "mappings/thresholds.yaml: colour: unknown key 'colour'; remove it or fix its "
        "spelling; expected one of version, default, groups, review_candidates, "
        "target_auto_route_precision, force_review_intents (value: 'blue')",
        "mappings/thresholds.yaml: groups.Nope: is not a resolver group in "
        "taxonomy.yaml; add the group to resolver_groups or fix the name "
        "(value: 'Nope')",
    ]


def test_validate_reads_env_folder(
    monkeypatch: pytest.MonkeyPatch, mapping_copy: Path
) -> None:
    (mapping_copy / "notes.txt").write_text("todo", encoding="utf-8")
    monkeypatch.setenv("OPSROUTE_MAPPINGS_DIR", str(mapping_copy))
    result = CliRunner().invoke(mappings, ["validate"])
    assert result.exit_code == 1
    assert result.stdout.startswith("mappings/notes.txt: unknown file;")


def test_validate_missing_folder_exits_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(mappings, ["validate", str(tmp_path / "absent")])
    assert result.exit_code == 1
    assert "folder not found" in result.stdout
