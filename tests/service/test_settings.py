"""Service settings: environment, validation, and secrets kept out of output."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import ValidationError

from router.service.logs import JsonFormatter, KeyValueFormatter
from router.service.settings import ServiceSettings

PASSWORD = "db-password-91c2"


def test_settings_read_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSROUTE_PORT", "9123")
    monkeypatch.setenv("OPSROUTE_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("OPSROUTE_RUN_MIGRATIONS", "false")
    settings = ServiceSettings()
    assert settings.port == 9123
    assert settings.max_body_bytes == 2048
    assert settings.run_migrations is False


def test_default_body_limit_is_ten_mib() -> None:
    assert ServiceSettings().max_body_bytes == 10 * 1024 * 1024


def test_repr_hides_database_password() -> None:
    settings = ServiceSettings(
        database_url=f"postgresql+psycopg://opsroute:{PASSWORD}@db.internal/opsroute"
    )
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)
    assert PASSWORD not in settings.database_display
    assert "***" in settings.database_display


def test_unknown_dataset_is_rejected() -> None:
    with pytest.raises(ValidationError, match="helpdesk"):
        ServiceSettings(model_dataset="nosuch")


def test_backoff_maximum_below_base_is_rejected() -> None:
    with pytest.raises(ValidationError, match="OPSROUTE_DISPATCH_BACKOFF_MAX_SECONDS"):
        ServiceSettings(
            dispatch_backoff_base_seconds=10, dispatch_backoff_max_seconds=1
        )


def record(message: str, **extra: object) -> logging.LogRecord:
    log_record = logging.LogRecord(
        "router.test", logging.INFO, __file__, 1, message, (), None
    )
    for key, value in extra.items():
        setattr(log_record, key, value)
    return log_record


def test_key_value_lines_carry_ids() -> None:
    line = KeyValueFormatter().format(
        record("Stored event", ticket_key="servicenow:INC1", delivery_id="d 1")
    )
    assert "level=info" in line
    assert 'msg="Stored event"' in line
    assert "ticket_key=servicenow:INC1" in line
    assert 'delivery_id="d 1"' in line


def test_json_lines_parse_as_objects() -> None:
    line = JsonFormatter().format(record("Stored event", delivery_id="d-1"))
    document = json.loads(line)
    assert document["msg"] == "Stored event"
    assert document["delivery_id"] == "d-1"
