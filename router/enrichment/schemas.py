"""Schema of the enricher configuration, `enrichment.yaml`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$")]


class BreakerSpec(BaseModel):
    """When the circuit breaker opens, and how long it stays open."""

    model_config = ConfigDict(extra="forbid")

    # Consecutive failed calls that open the breaker.
    failures: int = Field(default=5, ge=1)
    # Seconds the breaker stays open before one trial call is let through.
    reset_seconds: float = Field(default=60.0, gt=0)


class EnricherSpec(BaseModel):
    """One configured enricher: its kind, its limits and its own options."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    # The entry point name in the group `opsroute.enrichers`, such as `http`.
    kind: Name
    enabled: bool = True
    # Seconds one call may take, retries included.
    timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    cache_ttl_seconds: float = Field(default=300.0, ge=0)
    retries: int = Field(default=1, ge=0, le=5)
    # First wait before a retry in seconds; it doubles on each further retry.
    backoff_seconds: float = Field(default=0.1, ge=0)
    breaker: BreakerSpec = Field(default_factory=BreakerSpec)
    options: dict[str, Any] = Field(default_factory=dict)


class EnrichmentFile(BaseModel):
    """The enrichers the router calls, in order (`enrichment.yaml`)."""

    model_config = ConfigDict(extra="forbid")

    version: Annotated[str, StringConstraints(min_length=1)]
    enrichers: list[EnricherSpec] = Field(default_factory=list)
