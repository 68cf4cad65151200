"""Helpers for the service tests: a small model, settings, signed webhooks, waits."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.servicenow import ServiceNowConnector
from connectors.settings import ServiceNowSettings
from router.classification.evaluation import train_on
from router.classification.model import RoutingModel
from router.classification.training import TrainingParams
from router.datasets.catalog import load_examples
from router.mapping import MappingSet, load_mappings
from router.service.settings import ServiceSettings
from router.store.models import Base

WEBHOOK_SECRET = "test-webhook-secret-7f3a"
SNOW_USER = "opsroute"
SNOW_PASSWORD = "snow-password"
# Examples of the helpdesk dataset the test model trains on; 600 trained in 4 s.
MODEL_EXAMPLES = 600


def train_small_model() -> RoutingModel:
    """Train a helpdesk model on a fixed sample, fast enough for every test run."""
    examples = load_examples("helpdesk")
    random.Random(0).shuffle(examples)
    return train_on(
        examples[:MODEL_EXAMPLES], dataset="helpdesk", params=TrainingParams()
    )


def auto_route_mappings() -> MappingSet:
    """Return the shipped mappings with threshold 0, so every decision auto-routes."""
    mappings = load_mappings()
    thresholds = mappings.thresholds.model_copy(update={"default": 0.0})
    return replace(mappings, thresholds=thresholds)


def service_settings(
    database_url: str, tmp_path: Path, **values: Any
) -> ServiceSettings:
    """Return settings for one test: its database, a cache folder and quick polls."""
    defaults: dict[str, Any] = {
        "database_url": database_url,
        "model_cache_dir": tmp_path / "cache",
        "model_dataset": "helpdesk",
        "replica_id": f"test-{uuid.uuid4().hex[:8]}",
        "worker_poll_seconds": 0.05,
        "dispatcher_poll_seconds": 0.05,
        "model_poll_seconds": 0.2,
        "lease_ttl_seconds": 3.0,
    }
    return ServiceSettings(**(defaults | values))


def servicenow_connector(
    *,
    instance: str = "default",
    secret: str | None = WEBHOOK_SECRET,
    api_url: str | None = None,
    mappings: MappingSet | None = None,
) -> ServiceNowConnector:
    """Build the real ServiceNow connector with explicit settings."""
    settings = ServiceNowSettings(
        webhook_secret=secret,
        instance=api_url,
        user=SNOW_USER if api_url else None,
        password=SNOW_PASSWORD if api_url else None,
        timeout_seconds=5.0,
    )
    return ServiceNowConnector(instance=instance, mappings=mappings, settings=settings)


def incident(number: int, **fields: Any) -> dict[str, Any]:
    """Return a ServiceNow incident record as a Business Rule would post it."""
    record: dict[str, Any] = {
        "sys_id": hashlib.md5(f"incident-{number}".encode()).hexdigest(),
        "number": f"INC{number:07d}",
        "short_description": "Laptop screen flickers after the docking station update",
        "description": "My laptop monitor flickers since this morning.",
        "priority": "3",
        "state": "1",
        "sys_mod_count": "0",
        "sys_created_on": "2025-03-01 09:30:00",
        "sys_updated_on": "2025-03-01 09:30:00",
    }
    return record | fields


def signed(body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    """Return the headers of a ServiceNow webhook signed with the secret."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Opsroute-Signature": f"sha256={digest}",
    }


def encode(record: dict[str, Any]) -> bytes:
    """Return a record as a compact JSON body."""
    return json.dumps(record, separators=(",", ":")).encode()


def count_rows(session: Session, table: str) -> int:
    """Return the number of rows in one of the store's tables."""
    model_table = Base.metadata.tables[table]
    return session.execute(select(func.count()).select_from(model_table)).scalar_one()


def wait_for(
    condition: Callable[[], bool], *, timeout: float = 20.0, interval: float = 0.05
) -> bool:
    """Poll until the condition holds or the timeout passes; return the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
