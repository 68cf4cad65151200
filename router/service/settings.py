"""Settings of `opsroute serve`, from `OPSROUTE_*` variables or the settings file."""

from __future__ import annotations

import os
import socket

from pydantic import Field, model_validator
from sqlalchemy.engine import make_url

from router.datasets.catalog import DATASETS
from router.settings import CoreSettings

MIB = 1024 * 1024


def default_replica_id() -> str:
    """Return `hostname-pid`, which names this process in leases and claims."""
    return f"{socket.gethostname()}-{os.getpid()}"


class ServiceSettings(CoreSettings):
    """Settings of the HTTP service and its background parts.

    The database URL is left out of `repr`, because it may contain a password; use
    `database_display` in logs.
    """

    database_url: str = Field(
        default="sqlite:///opsroute.db",
        repr=False,
        description="SQLAlchemy URL of the store; by default ./opsroute.db (SQLite).",
    )
    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port.")
    max_body_bytes: int = Field(
        default=10 * MIB,
        ge=1,
        description="Largest request body accepted, in bytes; larger ones get 413.",
    )
    run_migrations: bool = Field(
        default=True, description="Apply pending migrations at start-up."
    )
    replica_id: str = Field(
        default_factory=default_replica_id,
        min_length=1,
        description="Name of this replica in leases and claims (hostname-pid).",
    )
    model_dataset: str = Field(
        default="apache-jira",
        description="Bundled dataset to train on when no model is stored.",
    )
    model_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Seconds between looks for a model that another replica trains.",
    )

    writer_max_events: int = Field(
        default=1000,
        ge=1,
        description="Most inbox events the group-commit writer stores per commit.",
    )
    writer_max_wait_seconds: float = Field(
        default=0.002,
        ge=0,
        description="Seconds the writer waits for more requests before it commits.",
    )
    writer_max_queue: int = Field(
        default=10_000,
        ge=1,
        description="Requests waiting for the writer beyond which webhooks get 503.",
    )
    ack_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a webhook waits for its commit before it gets 503.",
    )

    pipeline_process: bool = Field(
        default=True,
        description="Run the inbox worker and the outbox dispatcher in a child "
        "process, so that routing and acknowledging use a core each.",
    )
    worker_batch_size: int = Field(default=200, ge=1)
    worker_poll_seconds: float = Field(default=0.2, gt=0)
    dispatcher_batch_size: int = Field(default=50, ge=1)
    dispatcher_threads: int = Field(
        default=8, ge=1, description="Write-backs delivered at the same time."
    )
    dispatcher_poll_seconds: float = Field(default=0.2, gt=0)
    dispatch_claim_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Seconds a claimed action stays in flight before it is due again.",
    )
    dispatch_max_attempts: int = Field(default=8, ge=1)
    dispatch_backoff_base_seconds: float = Field(default=1.0, gt=0)
    dispatch_backoff_max_seconds: float = Field(default=300.0, gt=0)

    lease_ttl_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Lifetime of the scheduler and model-training leases; renewed "
        "every third of it.",
    )
    report_interval_seconds: float = Field(
        default=60.0, gt=0, description="Seconds between two queue reports."
    )
    poll_interval_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between two polls of each connector that polls.",
    )
    poll_max_records: int = Field(
        default=1000, ge=1, description="Most new records one poll stores."
    )
    queue_depth_seconds: float = Field(
        default=5.0, gt=0, description="Seconds between two queue-depth measurements."
    )

    @property
    def database_display(self) -> str:
        """Return the database URL with its password masked."""
        return make_url(self.database_url).render_as_string(hide_password=True)

    @model_validator(mode="after")
    def _check_combinations(self) -> ServiceSettings:
        if self.model_dataset not in DATASETS:
            raise ValueError(
                f"OPSROUTE_MODEL_DATASET {self.model_dataset!r} is not a bundled "
                f"dataset; use one of {', '.join(sorted(DATASETS))}."
            )
        if self.dispatch_backoff_max_seconds < self.dispatch_backoff_base_seconds:
            raise ValueError(
                "OPSROUTE_DISPATCH_BACKOFF_MAX_SECONDS "
                f"({self.dispatch_backoff_max_seconds}) is below "
                "OPSROUTE_DISPATCH_BACKOFF_BASE_SECONDS "
                f"({self.dispatch_backoff_base_seconds}); raise the maximum."
            )
        return self
