"""Core settings, read from `OPSROUTE_*` environment variables or a settings file."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_cache_dir() -> Path:
    """Return the per-user cache folder for model artefacts."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "opsroute"


class CoreSettings(BaseSettings):
    """Settings every command of the router needs.

    `OPSROUTE_SETTINGS_FILE` may name a `.env`-style file; environment variables
    win over it.
    """

    model_config = SettingsConfigDict(
        env_prefix="OPSROUTE_",
        env_file=os.environ.get("OPSROUTE_SETTINGS_FILE"),
        extra="ignore",
    )

    database_url: str = Field(
        default="sqlite:///opsroute.db",
        description="SQLAlchemy URL of the store; by default ./opsroute.db (SQLite).",
    )
    mappings_dir: Path | None = Field(
        default=None,
        description="Folder of mapping YAML files; unset means the shipped defaults.",
    )
    model_cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Folder where model artefacts read from the database are cached.",
    )
