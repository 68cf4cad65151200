"""Settings of the escalation timers, from `OPSROUTE_*` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EscalationSettings(BaseSettings):
    """How often the escalation timers run."""

    model_config = SettingsConfigDict(env_prefix="OPSROUTE_", extra="ignore")

    escalation_tick_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Seconds between two runs of the escalation timers; a timer "
        "fires up to this much after it falls due.",
    )
