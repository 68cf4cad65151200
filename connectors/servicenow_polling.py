"""ServiceNow polling, assignment checks and `connectors check` through pysnow.

A poll reads the configured table with an encoded query on `sys_updated_on`, ordered
by `sys_updated_on` and then `sys_id`, and pages by keyset instead of offsets: the
next page starts after the last (timestamp, sys_id) read. A burst of records sharing
one timestamp is read with `sys_updated_on=<t>^sys_id><last>` until it ends, so no
page boundary inside the burst loses or repeats a record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from connectors.base import (
    PollRetryPolicy,
    call_with_retries,
    http_problem,
    utc_now,
)
from router.intake.plugin import (
    Assignment,
    CheckResult,
    NewInboxEvent,
    PermanentDeliveryError,
    PolledRecord,
    PollError,
    RetryableDeliveryError,
)
from router.mapping import MappingSet
from router.mapping.transforms import sn_datetime
from router.schemas import Ticket

logger = logging.getLogger(__name__)

SN_TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
# Fields without which a webhook record is re-read through the Table API.
REQUIRED_FIELDS: Final = ("number", "short_description")
POLL_EVENT_TYPE: Final = "poll"
_DISPLAY_NAME: Final = "ServiceNow"
# Seconds between two lookups of a triage group that could not be resolved.


def sn_time(moment: datetime) -> str:
    """Return `moment` in the Table API's UTC format, `YYYY-MM-DD HH:MM:SS`."""
    return moment.astimezone(UTC).strftime(SN_TIME_FORMAT)


def range_query(since: datetime, *, inclusive: bool) -> str:
    """Return the encoded query of the records changed at (or after) `since`.

    The only value is a timestamp this module formats, so nothing can add a
    condition.
    """
    # NOTE: Timestamps are written in the Table API's UTC format. An instance that
    # reads query dates in the API user's time zone needs that user set to UTC.
    operator = ">=" if inclusive else ">"
    return (
        f"sys_updated_on{operator}{sn_time(since)}^ORDERBYsys_updated_on^ORDERBYsys_id"
    )


def burst_query(moment: datetime, *, after_id: str) -> str:
    """Return the encoded query of the records at `moment` after sys_id `after_id`.

    Raises:
        ValueError: `after_id` is not 32 hexadecimal characters, so it could carry
            a condition.
    """
    if not _is_sys_id(after_id):
        raise ValueError(f"sys_id {after_id!r:.40} is not 32 hexadecimal characters")
    return f"sys_updated_on={sn_time(moment)}^sys_id>{after_id}^ORDERBYsys_id"


def _is_sys_id(value: str) -> bool:
    return len(value) == 32 and all(char in "0123456789abcdef" for char in value)


def reference_parts(value: Any) -> tuple[str | None, str | None]:
    """Return (value, display value) of a reference field in any Table API shape."""
    if isinstance(value, Mapping):
        raw = value.get("value")
        display = value.get("display_value")
        return (str(raw) if raw else None, str(display) if display else None)
    if value in (None, ""):
        return None, None
    return str(value), None


class ServiceNowPolling:
    """Polling and checks of `ServiceNowConnector`; it supplies the attributes."""

    system: ClassVar[str]
    instance: str
    settings: Any
    mappings: Any
    _group_ids: dict[str, str]
    _get: Callable[..., list[dict[str, Any]]]
    _group_sys_id: Callable[[str], str]
    missing_settings: Callable[[], list[str]]
    resolve_triage: Callable[[str, Callable[[str], object]], None]

    retry_policy: PollRetryPolicy = PollRetryPolicy()

    def poll(self, since: datetime) -> Iterator[PolledRecord]:
        """Yield the table's records changed at or after `since`, oldest first.

        Raises:
            PollError: the instance is unreachable, rejected the request or kept
                rate limiting.
        """
        missing = self.missing_settings()
        if missing:
            raise PollError(
                f"ServiceNow polling needs API credentials: set {', '.join(missing)}."
            )
        table = str(self.settings.table)
        page_size = int(self.settings.poll_page_size)

        query = range_query(since, inclusive=True)
        burst_at: datetime | None = None
        while True:
            rows = self._poll_page(table, query, page_size)
            for row in rows:
                yield self._polled(row, table)
            if len(rows) == page_size:
                # The page is full: read the rest of its last timestamp by sys_id.
                last = rows[-1]
                burst_at = sn_datetime(last["sys_updated_on"])
                query = burst_query(burst_at, after_id=str(last["sys_id"]))
            elif burst_at is not None:
                query = range_query(burst_at, inclusive=False)
                burst_at = None
            else:
                return

    def _poll_page(self, table: str, query: str, limit: int) -> list[dict[str, Any]]:
        return call_with_retries(
            lambda: self._get(table, query=query, fields=[], limit=limit),
            what=f"ServiceNow poll of {table}",
            describe=self._describe_status,
            policy=self.retry_policy,
        )

    def _polled(self, row: dict[str, Any], table: str) -> PolledRecord:
        sys_id = str(row.get("sys_id") or "")
        updated = row.get("sys_updated_on")
        if not _is_sys_id(sys_id) or not updated:
            raise PollError(
                f"ServiceNow poll of {table} returned a record without sys_id or "
                f"sys_updated_on (sys_id {sys_id!r:.40}); the API user may lack "
                "read access to those fields."
            )
        record = {"table": table, **row}
        event = NewInboxEvent(
            system=self.system,
            instance=self.instance,
            delivery_id=None,
            record_key=sys_id,
            record_version=str(row.get("sys_mod_count") or updated),
            event_type=POLL_EVENT_TYPE,
            record=record,
            headers={},
            received_at=utc_now(),
        )
        return PolledRecord(event=event, updated_at=sn_datetime(updated))

    def _resolve_triage_group(self) -> None:
        triage = self._triage_group()
        if triage is None or triage in self._group_ids or self.missing_settings():
            return
        self.resolve_triage(triage, self._group_sys_id)

    def _triage_group(self) -> str | None:
        mapping = self.mappings.systems.get(self.system)
        return mapping.triage_group if mapping is not None else None

    def _describe_status(self, status: int, detail: str) -> str:
        user = self.settings.setting_name("user", self.instance)
        password = self.settings.setting_name("password", self.instance)
        return http_problem(
            status,
            system=_DISPLAY_NAME,
            credentials=f"{user} and {password}",
            detail=detail,
        )

    # Webhook records

    def to_ticket(self, record: Mapping[str, Any], *, mappings: MappingSet) -> Ticket:
        """Turn a record into a Ticket, first re-reading fields the webhook left out.

        A Business Rule may post only some fields. When `number` or
        `short_description` is missing and API credentials are set, the record
        is read by sys_id and the posted fields are laid over it. A failed read
        is logged and the posted fields are used alone.
        """
        if self.missing_settings() or all(
            record.get(name) not in (None, "") for name in REQUIRED_FIELDS
        ):
            return mappings.normalize(self.system, record)
        return mappings.normalize(self.system, self._completed(record))

    def _completed(self, record: Mapping[str, Any]) -> dict[str, Any]:
        sys_id = str(record.get("sys_id") or "")
        table = str(record.get("table") or self.settings.table)
        if not _is_sys_id(sys_id) or not table.replace("_", "").isalnum():
            return dict(record)
        # NOTE: The worker plans inside its database transaction on PostgreSQL,
        # so this read (up to timeout_seconds) holds the batch's row locks.
        try:
            rows = self._get(table, query=f"sys_id={sys_id}", fields=[], limit=1)
        except (PermanentDeliveryError, RetryableDeliveryError) as error:
            logger.warning(
                "ServiceNow re-read of %s/%s failed, routing from the posted "
                "fields: %s",
                table,
                sys_id,
                error,
            )
            return dict(record)
        if not rows:
            return dict(record)
        posted = {
            key: value for key, value in record.items() if value not in (None, "")
        }
        return {**rows[0], **posted}

    # Assignment

    def assignment(self, record: Mapping[str, Any]) -> Assignment:
        """Return the record's assignment group and whether opsroute changed it.

        The group may come as a sys_id, as `{link, value}`, as a display value, or
        with its name in `assignment_group_name` (the Business Rule script sends
        that). `sys_updated_by` equal to the API user marks our own change.
        """
        self._resolve_triage_group()
        value, display = reference_parts(record.get("assignment_group"))
        name = record.get("assignment_group_name")
        identifiers = {item for item in (value, display, name) if item}
        triage = self._triage_group()
        triage_ids = {triage, self._group_ids.get(triage)} if triage else set()
        user = self.settings.user
        updated_by = record.get("sys_updated_by")
        return Assignment(
            group=(str(name) if name else None) or display or value,
            identifiers=frozenset(str(item) for item in identifiers),
            sent_back=bool(identifiers & triage_ids),
            by_integration=bool(user) and updated_by == user,
            changed_by=str(updated_by) if updated_by else None,
        )

    # Checks

    def check(self) -> list[CheckResult]:
        """Try the credentials, the table, the groups and the journal."""
        missing = self.missing_settings()
        if missing:
            return [
                CheckResult(
                    "credentials", False, f"Not configured: set {', '.join(missing)}."
                )
            ]
        table = str(self.settings.table)
        results = [
            self._check_read(table, f"read {table}", unknown_table=True),
            self._check_read("sys_user_group", "read groups (sys_user_group)"),
            self._check_read(
                "sys_journal_field", "read work notes (sys_journal_field)"
            ),
        ]
        triage = self._triage_group()
        if triage is not None and results[1].ok:
            results.append(self._check_group(triage))
        return results

    def _check_read(
        self, table: str, name: str, *, unknown_table: bool = False
    ) -> CheckResult:
        try:
            self._get(table, query="", fields=["sys_id"], limit=1)
        except (PermanentDeliveryError, RetryableDeliveryError) as error:
            status = getattr(error, "status_code", 0)
            if unknown_table and status in (400, 404):
                setting = self.settings.setting_name("table", self.instance)
                return CheckResult(
                    name,
                    False,
                    f"ServiceNow has no table {table!r} (HTTP {status}); set "
                    f"{setting} to incident, sc_req_item or sn_customerservice_case.",
                )
            message = self._describe_status(status, "") if status else str(error)
            return CheckResult(name, False, message)
        return CheckResult(name, True, "OK")

    def _check_group(self, triage: str) -> CheckResult:
        name = f"triage group {triage!r}"
        try:
            self._group_sys_id(triage)
        except (PermanentDeliveryError, RetryableDeliveryError) as error:
            return CheckResult(name, False, str(error))
        return CheckResult(name, True, "OK")
