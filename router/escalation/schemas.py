"""Schema of the escalation policy files, `escalation/*.yaml`."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from router.policy.schemas import Target

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Priority = Annotated[int, Field(ge=1, le=5)]
Minutes = Annotated[float, Field(gt=0)]


class BusinessHours(BaseModel):
    """A working-hours calendar: timers and SLA clocks run only inside it."""

    model_config = ConfigDict(extra="forbid")

    timezone: Annotated[str, StringConstraints(min_length=1)] = "UTC"
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]))
    start: time = time(9, 0)
    end: time = time(17, 0)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {value!r} is unknown; use an IANA name such as "
                "'Europe/Berlin' or 'UTC'"
            ) from None
        return value

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value: time, info: ValidationInfo) -> time:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError(f"end {value} must be later than start {start}")
        return value


class Level(BaseModel):
    """One escalation level: whom to notify, how long to wait, how often to repeat."""

    model_config = ConfigDict(extra="forbid")

    targets: list[Target] = Field(min_length=1)
    # Minutes without acknowledgement before the level repeats or the next starts.
    ack_timeout_minutes: Minutes
    # How many more times the level notifies before the next level starts.
    repeat: int = Field(default=0, ge=0, le=20)


class SlaClock(BaseModel):
    """Minutes to resolution per priority, by default and per entitlement."""

    model_config = ConfigDict(extra="forbid")

    default: dict[Priority, Minutes] = Field(default_factory=dict)
    # Entitlement name (the ticket's `context.entitlement`) -> priority -> minutes.
    entitlements: dict[str, dict[Priority, Minutes]] = Field(default_factory=dict)


class EscalationFile(BaseModel):
    """A versioned escalation policy (`escalation/*.yaml`)."""

    model_config = ConfigDict(extra="forbid")

    version: Annotated[str, StringConstraints(min_length=1)]
    description: str = ""
    levels: list[Level] = Field(min_length=1)
    # None means the clocks run around the clock.
    business_hours: BusinessHours | None = None
    sla: SlaClock = Field(default_factory=SlaClock)
