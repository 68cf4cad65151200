"""Fixtures for the mapping tests: the shipped folder, and editable copies of it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from router.mapping import MappingSet, default_mappings_dir, load_mappings


@pytest.fixture(scope="session")
def shipped_dir() -> Path:
    """Return the mapping folder shipped inside the `mappings` package."""
    return Path(str(default_mappings_dir()))


@pytest.fixture(scope="session")
def mapping_set(shipped_dir: Path) -> MappingSet:
    """Return the shipped mappings, loaded once for the session."""
    return load_mappings(shipped_dir)


@pytest.fixture
def mapping_copy(tmp_path: Path, shipped_dir: Path) -> Path:
    """Return an editable copy of the shipped folder, named `mappings`."""
    target = tmp_path / "mappings"
    shutil.copytree(
        shipped_dir, target, ignore=shutil.ignore_patterns("__pycache__", "__init__.py")
    )
    return target


@pytest.fixture
def edit_yaml(mapping_copy: Path) -> Callable[[str, Callable[[dict], None]], None]:
    """Return a function that loads a YAML file of the copy, edits it and saves it."""

    def edit(name: str, change: Callable[[dict], None]) -> None:
        path = mapping_copy / name
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    return edit
