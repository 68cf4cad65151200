"""Poll connectors for changed records and store them in the inbox.

Each poll reads from the stored watermark minus an overlap window, skips the
changes it already stored near the watermark, and stores the new ones in the
inbox in the same transaction that moves the watermark. The worker then routes
them like webhook events. A failed poll marks the connector unhealthy with the
reason and waits before the next one: the vendor's Retry-After when it sent one,
else an exponential backoff with jitter.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from router.intake.plugin import (
    PermanentDeliveryError,
    PolledRecord,
    PollError,
    PollingConnector,
    RetryableDeliveryError,
)
from router.service.transactions import write_transaction
from router.store.connector_state import (
    ConnectorState,
    ensure_connector_state,
    update_connector_state,
)
from router.store.inbox import insert_inbox_events

logger = logging.getLogger(__name__)

# Maximum new records one poll stores; the next poll goes on from there.
DEFAULT_MAX_RECORDS = 1000
# Events per inbox transaction of a backfill.
BACKFILL_CHUNK = 500


@dataclass
class PollOutcome:
    """The outcome of one poll of one connector."""

    connector: str
    status: str
    stored: int = 0
    duplicates: int = 0
    read: int = 0
    watermark: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class PollBackoff:
    """Delay before the poll after a failure, in seconds."""

    base_seconds: float = 30.0
    max_seconds: float = 900.0

    def delay(self, failures: int, *, retry_after: float | None) -> float:
        """Return the delay after `failures` consecutive failures.

        A vendor's Retry-After wins; otherwise the delay is exponential from
        `base_seconds`, capped at `max_seconds`, with jitter of up to half of it.
        """
        if retry_after is not None:
            return min(retry_after, self.max_seconds)
        ceiling = min(self.base_seconds * 2 ** max(failures - 1, 0), self.max_seconds)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def parse_poll_start(value: str, *, now: datetime) -> datetime:
    """Return the first watermark a `poll_start` setting names.

    Raises:
        ValueError: the value is neither 'now' nor an ISO 8601 date or time.
    """
    text = value.strip()
    if text.lower() == "now":
        return now
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"poll start {value!r} is invalid; use 'now' or an ISO 8601 date or "
            "time in UTC such as 2026-11-01 or 2026-11-01T08:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def connector_name(connector: PollingConnector) -> str:
    """Return `system/instance`."""
    return f"{connector.system}/{connector.instance}"


@dataclass
class ConnectorPoller:
    """Poll connectors into the inbox, keeping each one's watermark in the store."""

    session_factory: sessionmaker[Session]
    max_records: int = DEFAULT_MAX_RECORDS
    backoff: PollBackoff = field(default_factory=PollBackoff)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def poll(self, connector: PollingConnector) -> PollOutcome:
        """Poll one connector once, unless it is paused or waiting after a failure."""
        name = connector_name(connector)
        now = self.clock()
        try:
            state = self._state(connector, now=now)
        except ValueError as error:
            setting = connector.settings.setting_name("poll_start", connector.instance)
            logger.error("Poll of %s not started: %s: %s", name, setting, error)
            return PollOutcome(name, "failed", error=f"{setting}: {error}")
        if state.paused:
            logger.debug("Connector %s is paused; not polling", name)
            return PollOutcome(name, "paused", watermark=state.watermark)
        if state.retry_at is not None and now < state.retry_at:
            logger.debug("Connector %s waits until %s", name, state.retry_at)
            return PollOutcome(name, "waiting", watermark=state.watermark)

        overlap = timedelta(seconds=float(connector.settings.poll_overlap_seconds))
        watermark = state.watermark or now
        seen = _seen_times(state)
        records, failure = self._read(connector, since=watermark - overlap, seen=seen)
        outcome = self._store(connector, state, records, seen=seen, overlap=overlap)
        if failure is not None:
            return self._failed(connector, state, failure, outcome=outcome)
        self._log(outcome)
        return outcome

    def backfill(
        self, connector: PollingConnector, *, since: datetime, limit: int | None
    ) -> PollOutcome:
        """Store every record changed since `since` in the inbox, up to `limit`.

        The watermark is left alone, so the regular polls go on where they were.

        Raises:
            PollError: the connector failed; the records stored so far stay.
        """
        name = connector_name(connector)
        outcome = PollOutcome(name, "backfilled")
        chunk: list[PolledRecord] = []
        for record in connector.poll(since):
            chunk.append(record)
            outcome.read += 1
            if len(chunk) >= BACKFILL_CHUNK:
                self._insert(chunk, outcome)
                chunk = []
            if limit is not None and outcome.read >= limit:
                break
        self._insert(chunk, outcome)
        logger.info(
            "Backfilled %s since %s: read %d, stored %d, %d already stored",
            name,
            since.isoformat(),
            outcome.read,
            outcome.stored,
            outcome.duplicates,
        )
        return outcome

    # Steps of a poll

    def _state(self, connector: PollingConnector, *, now: datetime) -> ConnectorState:
        settings = connector.settings
        with write_transaction(self.session_factory) as session:
            return ensure_connector_state(
                session,
                system=connector.system,
                instance=connector.instance,
                watermark=parse_poll_start(str(settings.poll_start), now=now),
                observe_only=bool(settings.observe_only),
            )

    def _read(
        self, connector: PollingConnector, *, since: datetime, seen: dict[str, str]
    ) -> tuple[list[PolledRecord], PollError | None]:
        records: list[PolledRecord] = []
        new = 0
        try:
            for record in connector.poll(since):
                records.append(record)
                if record.seen_key not in seen:
                    new += 1
                if new >= self.max_records:
                    break
        except PollError as error:
            return records, error
        except (RetryableDeliveryError, PermanentDeliveryError) as error:
            retry_after = getattr(error, "retry_after", None)
            return records, PollError(str(error), retry_after=retry_after)
        return records, None

    def _store(
        self,
        connector: PollingConnector,
        state: ConnectorState,
        records: list[PolledRecord],
        *,
        seen: dict[str, str],
        overlap: timedelta,
    ) -> PollOutcome:
        name = connector_name(connector)
        fresh = [record for record in records if record.seen_key not in seen]
        watermark = max(
            [
                state.watermark or self.clock(),
                *(record.updated_at for record in records),
            ]
        )
        recent_seen = _kept_seen(seen, records, since=watermark - overlap)
        outcome = PollOutcome(name, "polled", read=len(records), watermark=watermark)
        outcome.duplicates = len(records) - len(fresh)
        with write_transaction(self.session_factory) as session:
            flags = insert_inbox_events(
                session, events=[record.event for record in fresh]
            )
            outcome.stored = sum(flags)
            outcome.duplicates += len(flags) - outcome.stored
            update_connector_state(
                session,
                system=connector.system,
                instance=connector.instance,
                watermark=watermark,
                cursor={"seen": recent_seen},
                healthy=True,
                last_error=None,
                failures=0,
                retry_at=None,
                last_poll_at=self.clock(),
            )
        return outcome

    def _failed(
        self,
        connector: PollingConnector,
        state: ConnectorState,
        error: PollError,
        *,
        outcome: PollOutcome,
    ) -> PollOutcome:
        failures = state.failures + 1
        delay = self.backoff.delay(failures, retry_after=error.retry_after)
        retry_at = self.clock() + timedelta(seconds=delay)
        with write_transaction(self.session_factory) as session:
            update_connector_state(
                session,
                system=connector.system,
                instance=connector.instance,
                healthy=False,
                last_error=str(error),
                failures=failures,
                retry_at=retry_at,
            )
        logger.warning(
            "Poll of %s failed (%d in a row), next poll after %s: %s; "
            "stored %d records before the failure",
            outcome.connector,
            failures,
            retry_at.isoformat(timespec="seconds"),
            error,
            outcome.stored,
        )
        outcome.status = "failed"
        outcome.error = str(error)
        return outcome

    def _insert(self, chunk: Iterable[PolledRecord], outcome: PollOutcome) -> None:
        events = [record.event for record in chunk]
        if not events:
            return
        with write_transaction(self.session_factory) as session:
            flags = insert_inbox_events(session, events=events)
        outcome.stored += sum(flags)
        outcome.duplicates += len(flags) - sum(flags)

    def _log(self, outcome: PollOutcome) -> None:
        log = logger.info if outcome.stored else logger.debug
        log(
            "Polled %s: read %d, stored %d, %d already stored, watermark %s",
            outcome.connector,
            outcome.read,
            outcome.stored,
            outcome.duplicates,
            outcome.watermark.isoformat() if outcome.watermark else None,
        )


def _seen_times(state: ConnectorState) -> dict[str, str]:
    seen: Any = state.cursor.get("seen") or {}
    if isinstance(seen, dict):
        return {str(key): str(value) for key, value in seen.items()}
    # A list of keys without times is kept until the next poll passes them.
    return {str(key): "" for key in seen}


def _kept_seen(
    seen: dict[str, str], records: list[PolledRecord], *, since: datetime
) -> dict[str, str]:
    """Return the seen changes at or after `since`, the start of the next poll."""
    merged = dict(seen)
    for record in records:
        merged[record.seen_key] = record.updated_at.isoformat()
    threshold = since.isoformat()
    return {key: moment for key, moment in merged.items() if moment >= threshold}
