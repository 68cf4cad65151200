"""Salesforce polling, assignment checks and `connectors check`.

A poll reads Cases with SOQL on `SystemModstamp` (which also changes on system
updates that `LastModifiedDate` misses), ordered by `SystemModstamp` and `Id`,
and follows `nextRecordsUrl` until the result is done. Ids are compared in their
18-character form, so a 15-character id from a formula or report is the same
record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar, Final

from simple_salesforce import Salesforce
from simple_salesforce.format import format_soql

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
from router.mapping.transforms import offset_datetime, salesforce_id18

logger = logging.getLogger(__name__)

POLL_EVENT_TYPE: Final = "poll"
# Case fields a poll reads; Owner.Name and Owner.Type tell a queue from a person.
POLL_FIELDS: Final = (
    "Id",
    "CaseNumber",
    "Subject",
    "Description",
    "Priority",
    "Status",
    "Origin",
    "Type",
    "Reason",
    "OwnerId",
    "Owner.Name",
    "Owner.Type",
    "AccountId",
    "ContactId",
    "CreatedDate",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
)
_DISPLAY_NAME: Final = "Salesforce"
# Seconds between two lookups of a triage queue that could not be resolved.


def poll_soql(since: datetime) -> str:
    """Return the SOQL of a poll; the timestamp goes through `format_soql`."""
    return format_soql(
        f"SELECT {', '.join(POLL_FIELDS)} FROM Case WHERE SystemModstamp >= {{}} "
        "ORDER BY SystemModstamp ASC, Id ASC",
        since.astimezone(UTC),
    )


def _query_more(sf: Salesforce, *, url: str) -> Any:
    return sf.query_more(url, identifier_is_url=True)


def id18_or_none(value: Any) -> str | None:
    """Return the 18-character form of an id, or None for an empty or invalid one."""
    if not value:
        return None
    try:
        return salesforce_id18(value)
    except ValueError:
        return None


class SalesforcePolling:
    """Polling and checks of `SalesforceConnector`; it supplies the attributes."""

    system: ClassVar[str]
    instance: str
    settings: Any
    mappings: Any
    _queue_ids: dict[str, str]
    _call: Callable[..., Any]
    _queue_id: Callable[[str], str]
    missing_settings: Callable[[], list[str]]
    resolve_triage: Callable[[str, Callable[[str], object]], None]

    retry_policy: PollRetryPolicy = PollRetryPolicy()

    def poll(self, since: datetime) -> Iterator[PolledRecord]:
        """Yield the Cases changed at or after `since`, oldest first.

        Raises:
            PollError: the org is unreachable, rejected the session, is over its
                request limit (a pause) or kept failing.
        """
        missing = self.missing_settings()
        if missing:
            raise PollError(
                f"Salesforce polling needs API credentials: set {', '.join(missing)}."
            )
        soql = poll_soql(since)
        result = self._query(lambda sf: sf.query(soql))
        while True:
            for row in result.get("records") or []:
                yield self._polled(row)
            next_url = result.get("nextRecordsUrl")
            if result.get("done", True) or not next_url:
                return
            result = self._query(partial(_query_more, url=str(next_url)))

    def _query(self, call: Callable[[Salesforce], Any]) -> dict[str, Any]:
        result = call_with_retries(
            lambda: self._call("Salesforce poll query", call),
            what="Salesforce poll of Case",
            describe=self._describe_status,
            policy=self.retry_policy,
        )
        return dict(result)

    def _polled(self, row: Mapping[str, Any]) -> PolledRecord:
        case_id = id18_or_none(row.get("Id"))
        stamp = row.get("SystemModstamp")
        if case_id is None or not stamp:
            raise PollError(
                "Salesforce poll returned a Case without a valid Id or SystemModstamp "
                f"(Id {row.get('Id')!r:.40}); the API user may lack field access."
            )
        record = {key: value for key, value in row.items() if key != "attributes"}
        record["attributes"] = {"type": "Case"}
        event = NewInboxEvent(
            system=self.system,
            instance=self.instance,
            delivery_id=None,
            record_key=case_id,
            record_version=str(stamp),
            event_type=POLL_EVENT_TYPE,
            record=record,
            headers={},
            received_at=utc_now(),
        )
        return PolledRecord(
            event=event, updated_at=offset_datetime(stamp).astimezone(UTC)
        )

    def _triage_queue(self) -> str | None:
        mapping = self.mappings.systems.get(self.system)
        return mapping.triage_group if mapping is not None else None

    def _resolve_triage_queue(self) -> None:
        triage = self._triage_queue()
        if triage is None or triage in self._queue_ids or self.missing_settings():
            return
        self.resolve_triage(triage, self._queue_id)

    def _describe_status(self, status: int, detail: str) -> str:
        if self.settings.session_id is not None:
            credentials = self.settings.setting_name("session_id", self.instance)
        else:
            names = ("username", "password", "security_token")
            credentials = ", ".join(
                self.settings.setting_name(name, self.instance) for name in names
            )
        return http_problem(
            status, system=_DISPLAY_NAME, credentials=credentials, detail=detail
        )

    # Assignment

    def assignment(self, record: Mapping[str, Any]) -> Assignment:
        """Return the Case owner and whether our API user made the change.

        The owner is a queue or a user. A poll also carries `Owner.Name`; an
        Outbound Message carries only `OwnerId`, matched to the triage queue
        through the id the connector resolved.
        """
        self._resolve_triage_queue()
        owner = record.get("Owner")
        owner_name = owner.get("Name") if isinstance(owner, Mapping) else None
        owner_id = id18_or_none(record.get("OwnerId"))
        identifiers = {item for item in (owner_id, owner_name) if item}
        triage = self._triage_queue()
        triage_ids = {triage, self._queue_ids.get(triage)} if triage else set()
        ours = id18_or_none(self.settings.integration_user_id)
        changed_by = id18_or_none(record.get("LastModifiedById"))
        return Assignment(
            group=(str(owner_name) if owner_name else None) or owner_id,
            identifiers=frozenset(str(item) for item in identifiers),
            sent_back=bool(identifiers & triage_ids),
            by_integration=ours is not None and changed_by == ours,
            changed_by=changed_by,
        )

    # Checks

    def check(self) -> list[CheckResult]:
        """Log in, read Cases and case comments, and look up the triage queue."""
        missing = self.missing_settings()
        if missing:
            return [
                CheckResult(
                    "credentials", False, f"Not configured: set {', '.join(missing)}."
                )
            ]
        results = [
            self._check(
                "read Cases", "SELECT Id FROM Case ORDER BY SystemModstamp DESC LIMIT 1"
            ),
        ]
        if not results[0].ok:
            return results
        results.append(
            self._check(
                "read case comments",
                "SELECT Id FROM CaseComment ORDER BY CreatedDate DESC LIMIT 1",
            )
        )
        triage = self._triage_queue()
        if triage is not None:
            name = f"triage queue {triage!r}"
            try:
                self._queue_id(triage)
            except (PermanentDeliveryError, RetryableDeliveryError) as error:
                results.append(CheckResult(name, False, str(error)))
            else:
                results.append(CheckResult(name, True, "OK"))
        return results

    def _check(self, name: str, soql: str) -> CheckResult:
        try:
            self._call(f"Salesforce check {name}", lambda sf: sf.query(soql))
        except (PermanentDeliveryError, RetryableDeliveryError) as error:
            status = getattr(error, "status_code", 0)
            message = self._describe_status(status, "") if status else str(error)
            return CheckResult(name, False, message)
        return CheckResult(name, True, "OK")
