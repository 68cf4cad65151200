"""The protocol between the router and its connectors, and the values they exchange.

The service and the workers import only this module, never `connectors`: each
connector package registers a factory in the entry point group `opsroute.connectors`
(the entry point's name is the system), and `load_connectors` builds one connector
per configured instance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Final, Protocol, runtime_checkable

from router.mapping import MappingSet
from router.schemas import Ticket
from router.store.inbox import NewInboxEvent

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP: Final = "opsroute.connectors"
NOTIFIER_ENTRY_POINT_GROUP: Final = "opsroute.notifiers"
DEFAULT_INSTANCE: Final = "default"


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook request as the service received it, before any check."""

    system: str
    instance: str
    method: str
    path: str
    # Header names are lower-case.
    headers: Mapping[str, str]
    body: bytes
    content_type: str
    remote_addr: str | None = None


class WebhookError(ValueError):
    """A rejected webhook request, with the HTTP status of the response.

    The message says what was wrong and what to do. It never contains a secret or
    the request body. `response_body` and `response_content_type`, when set, are
    the body the vendor expects with the error, such as a SOAP fault for
    Salesforce; otherwise the service answers with its own JSON error.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        response_body: bytes | None = None,
        response_content_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response_body = response_body
        self.response_content_type = response_content_type

    @property
    def message(self) -> str:
        """Return the error text without the status code."""
        return str(self.args[0])


@dataclass(frozen=True)
class ParsedWebhook:
    """The events of one verified webhook request, and the acknowledgement to send.

    A request may carry no event to store (an event type that routes nothing); it
    is acknowledged all the same.
    """

    # Events to store, in the store's type; the store keys duplicates on
    # delivery_id, else on record_key and record_version.
    events: list[NewInboxEvent]
    ack_content_type: str = "application/json"
    ack_body: bytes = b'{"status":"accepted"}'


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one delivered outbox action.

    `marker_found` is true when the record already contained the action's marker,
    so nothing was written this time.
    """

    marker_found: bool
    details: dict[str, Any] = field(default_factory=dict)


class RetryableDeliveryError(RuntimeError):
    """A delivery that failed for now (5xx, 429, timeout); try again later.

    `retry_after` is the delay in seconds the vendor asked for, if it sent one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(RuntimeError):
    """A delivery that will fail again unchanged (4xx, bad payload, missing group)."""


class DeliveryAction(Protocol):
    """What `Connector.deliver` reads of an outbox action.

    The store's `OutboxAction` record has these attributes. For a `write_back`
    action, `payload` contains:

    - `group`: the resolver group name from the taxonomy, or absent for a note
      without reassignment;
    - `reason`: one line that gives the reason, written into the note;
    - `target` (optional): the group's name in the vendor system, which overrides
      the taxonomy's `targets` entry;
    - `table` (ServiceNow only, optional): the record's table, `incident` by default;
    - `on_behalf_of` (optional): the person who acted in Slack, with `name`,
      `email`, `slack_user_id`, and `user`, their account in this system or null;
    - `assign_to_person` (optional): true to make that account the record's
      assignee, which the Jira and ServiceNow connectors do.

    `marker` is written into the note, and `deliver` looks for it before writing,
    unless `first_attempt` is true: only a delivery of this action writes its
    marker, so on the first attempt it cannot be in the record yet.
    """

    @property
    def id(self) -> int: ...
    @property
    def system(self) -> str: ...
    @property
    def instance(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def ticket_key(self) -> str: ...
    @property
    def record_id(self) -> str | None: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def marker(self) -> str: ...
    @property
    def first_attempt(self) -> bool: ...


@runtime_checkable
class Connector(Protocol):
    """One configured instance of a source system."""

    system: str
    instance: str

    def webhook_secret_setting(self) -> str | None:
        """Return the name of the missing webhook secret setting, or None if set."""
        ...

    def missing_settings(self) -> list[str]:
        """Return the names of unset settings that write-back needs."""
        ...

    def can_write(self) -> bool:
        """Return whether the API credentials for write-back are configured."""
        ...

    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        """Verify the request's signature or sender, then parse its events.

        Raises:
            WebhookError: the request is unauthenticated (401), from a sender that
                is not allowed (403), malformed (400) or of the wrong content type
                (415).
        """
        ...

    def to_ticket(self, record: Mapping[str, Any], *, mappings: MappingSet) -> Ticket:
        """Turn a stored event's record into a Ticket through the system's mapping."""
        ...

    def deliver(self, action: DeliveryAction) -> DeliveryResult:
        """Write one outbox action to the vendor system, unless its marker is there.

        Raises:
            RetryableDeliveryError: the vendor is down, slow or rate limiting.
            PermanentDeliveryError: the action cannot succeed as it is.
        """
        ...


@dataclass(frozen=True)
class PolledRecord:
    """One record a poll returned, as an inbox event with its change time."""

    event: NewInboxEvent
    # The record's change time (sys_updated_on, updated, SystemModstamp) in UTC.
    updated_at: datetime

    @property
    def seen_key(self) -> str:
        """Return `record_key@record_version`, which identifies this change."""
        return f"{self.event.record_key}@{self.event.record_version or ''}"


@dataclass(frozen=True)
class Assignment:
    """The group a record is assigned to, as the planner compares it.

    `identifiers` contains every name and id the current group goes by in the
    system (a sys_id and a name, a queue id and its name, a component), so it can
    be matched against what opsroute wrote. It is empty for an unassigned record.
    """

    group: str | None
    identifiers: frozenset[str] = frozenset()
    # The group is the triage group, or the record carries the reroute label.
    sent_back: bool = False
    # The change was made by the API user opsroute writes with.
    by_integration: bool = False
    # Who made the change, as the system names the user, when the record has it.
    changed_by: str | None = None


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check of `opsroute connectors check`."""

    name: str
    ok: bool
    message: str


class PollError(RuntimeError):
    """A failed poll, whose message gives the reason in plain words.

    `retry_after` is the delay in seconds before the next poll, when the vendor
    asked for one (Retry-After, a request limit).
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class PollingConnector(Connector, Protocol):
    """A connector that can also poll its system and check its credentials.

    `settings` has the poll settings of `connectors.settings`: `poll`,
    `poll_start`, `poll_overlap_seconds`, `poll_page_size` and `observe_only`.
    """

    settings: Any

    def poll(self, since: datetime) -> Iterator[PolledRecord]:
        """Yield the records changed at or after `since`, oldest change first.

        Pages are fetched as the iterator advances, so a caller that stops early
        fetches no more.

        Raises:
            PollError: the system is unreachable, rejected the credentials or
                kept rate limiting after the connector's own retries.
        """
        ...

    def assignment(self, record: Mapping[str, Any]) -> Assignment:
        """Return the group of a stored record and who made the change."""
        ...

    def check(self) -> list[CheckResult]:
        """Try the credentials and permissions; one result per check."""
        ...


# A connector factory, the object each entry point names.
ConnectorFactory = Callable[..., Connector]


def _connector_entry_points() -> Iterable[EntryPoint]:
    return entry_points(group=ENTRY_POINT_GROUP)


def load_connectors(
    settings: object | None = None,
    *,
    instances: Mapping[str, Sequence[str]] | None = None,
    mappings: MappingSet | None = None,
) -> dict[tuple[str, str], Connector]:
    """Build every configured connector from the `opsroute.connectors` entry points.

    Each entry point names a factory called as `factory(instance=..., mappings=...)`.
    The default instance of a system reads `OPSROUTE_<SYSTEM>_*` variables, and an
    instance named `eu` reads `OPSROUTE_<SYSTEM>_EU_*`.

    Args:
        settings: the service settings; its `connector_instances` attribute, when
            present, is used where `instances` is not given.
        instances: system name -> instance names; a system missing from it gets
            the default instance only.
        mappings: the mapping files the connectors resolve group names with;
            None lets each connector load the configured ones when it needs them.

    Returns:
        (system, instance) -> connector.
    """
    if instances is None:
        instances = getattr(settings, "connector_instances", None) or {}
    loaded: dict[tuple[str, str], Connector] = {}
    for entry_point in _connector_entry_points():
        system = entry_point.name
        factory: ConnectorFactory = entry_point.load()
        for instance in instances.get(system, (DEFAULT_INSTANCE,)):
            loaded[(system, instance)] = factory(instance=instance, mappings=mappings)
    if not loaded:
        logger.warning(
            "No connector found in entry point group %s; reinstall the package "
            "(pip install -e .) so that its entry points are registered",
            ENTRY_POINT_GROUP,
        )
    logger.info("Loaded connectors %s", sorted(loaded))
    return loaded


def load_notifiers(
    *, session_factory: object, mappings: MappingSet | None = None
) -> dict[tuple[str, str], Any]:
    """Build one notifier per entry point of the `opsroute.notifiers` group.

    Each entry point names a factory called as `factory(instance="default",
    mappings=..., session_factory=...)`. A notifier has a connector's `system`,
    `instance`, `can_write()`, `missing_settings()`, `webhook_secret_setting()`
    and `deliver(action)`, and delivers the `notification` actions whose system is
    the entry point's name.

    A notifier whose factory raises ValueError (a setting it needs is invalid)
    is left out with a warning.

    Returns:
        (name, "default") -> notifier.
    """
    loaded: dict[tuple[str, str], Any] = {}
    for entry_point in entry_points(group=NOTIFIER_ENTRY_POINT_GROUP):
        factory = entry_point.load()
        try:
            notifier = factory(
                instance=DEFAULT_INSTANCE,
                mappings=mappings,
                session_factory=session_factory,
            )
        except ValueError as error:
            logger.warning("Notifier %s is left out: %s", entry_point.name, error)
            continue
        loaded[(entry_point.name, DEFAULT_INSTANCE)] = notifier
    logger.info("Loaded notifiers %s", sorted(loaded))
    return loaded
