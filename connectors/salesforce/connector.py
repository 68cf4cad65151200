"""Salesforce: Outbound Messages in, case owner and a private comment out.

Outbound Messages carry no signature, so the sender is checked against the
allow-list of organization ids in `OPSROUTE_SALESFORCE_ORG_IDS`. That check needs
the OrganizationId from the body, so the XML is parsed (safely) first, and the
notifications are read only once the org is allowed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

import requests
from simple_salesforce import Salesforce, SFType
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
)
from simple_salesforce.format import format_soql

from connectors.base import (
    BaseConnector,
    filter_headers,
    note_text,
    require_content_type,
    utc_now,
)
from connectors.salesforce.errors import delivery_error
from connectors.salesforce.outbound import (
    ACK_BODY,
    SOAP_CONTENT_TYPE,
    Notification,
    find_notifications,
    organization_id,
    outbound_error,
    parse_envelope,
    read_message,
)
from connectors.salesforce.polling import SalesforcePolling
from connectors.salesforce.tasks import deliver_task
from connectors.settings import SalesforceSettings
from router.intake.plugin import (
    DEFAULT_INSTANCE,
    DeliveryAction,
    DeliveryResult,
    NewInboxEvent,
    ParsedWebhook,
    PermanentDeliveryError,
    RetryableDeliveryError,
    WebhookRequest,
)
from router.mapping import MappingSet
from router.mapping.transforms import salesforce_id18

logger = logging.getLogger(__name__)

SOAP_MEDIA_TYPES: Final = ("text/xml", "application/xml")
ROUTED_SOBJECT_TYPES: Final = frozenset({"Case"})

ResultT = TypeVar("ResultT")


class SalesforceConnector(SalesforcePolling, BaseConnector):
    """One Salesforce org: Outbound Messages, polling and REST write-back."""

    system = "salesforce"

    def __init__(
        self,
        *,
        instance: str = DEFAULT_INSTANCE,
        mappings: MappingSet | None = None,
        settings: SalesforceSettings | None = None,
        http_session: requests.Session | None = None,
    ) -> None:
        super().__init__(instance=instance, mappings=mappings)
        self.settings = settings or SalesforceSettings.for_instance(instance)
        self._http_session = http_session
        self._client: Salesforce | None = None
        self._queue_ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def webhook_secret_setting(self) -> str | None:
        """Return the name of the org allow-list setting when it is empty."""
        if not self.settings.org_ids.strip():
            return SalesforceSettings.setting_name("org_ids", self.instance)
        return None

    def missing_settings(self) -> list[str]:
        """Return the unset settings that write-back needs."""

        def name(field: str) -> str:
            return SalesforceSettings.setting_name(field, self.instance)

        if self.settings.session_id is not None:
            return [] if self.settings.instance_url else [name("instance_url")]
        missing = [
            name(field)
            for field in ("username", "password", "security_token")
            if not getattr(self.settings, field)
        ]
        return missing

    def can_write(self) -> bool:
        """Return whether REST API credentials are configured."""
        return not self.missing_settings()

    # Webhooks

    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        """Check the sending org, then turn each Notification into an inbox event.

        Raises:
            WebhookError: with a SOAP fault body: 415 for a body that is not XML,
                400 for malformed XML, a DTD or entities, 403 for an org that is
                not allowed, 503 when the allow-list is empty.
        """
        allowed = self._allowed_org_ids()
        require_content_type(request, expected=SOAP_MEDIA_TYPES, system="Salesforce")
        notifications = find_notifications(parse_envelope(request.body))

        org_id = organization_id(notifications)
        org_id18 = _org_id18(org_id)
        if org_id18 not in allowed:
            raise outbound_error(
                f"Salesforce Outbound Message from organization {org_id} rejected: "
                "the org is not allowed; add its id to "
                f"{SalesforceSettings.setting_name('org_ids', self.instance)}.",
                status_code=403,
            )

        message = read_message(notifications, org_id=org_id18)
        headers = filter_headers(request.headers)
        received_at = utc_now()
        events = [
            self._event(notification, headers=headers, received_at=received_at)
            for notification in message.notifications
        ]
        return ParsedWebhook(
            events=events, ack_content_type=SOAP_CONTENT_TYPE, ack_body=ACK_BODY
        )

    def _allowed_org_ids(self) -> frozenset[str]:
        setting = self.webhook_secret_setting()
        if setting is not None:
            raise outbound_error(
                f"Salesforce Outbound Messages are not configured: set {setting}.",
                status_code=503,
            )
        try:
            return self.settings.allowed_org_ids()
        except ValueError as exc:
            raise outbound_error(str(exc), status_code=503) from None

    def _event(
        self, notification: Notification, *, headers: dict[str, str], received_at: Any
    ) -> NewInboxEvent:
        if notification.sobject_type not in ROUTED_SOBJECT_TYPES:
            raise outbound_error(
                f"Salesforce Notification {notification.notification_id} carries a "
                f"{notification.sobject_type or 'untyped'} sObject; opsroute routes "
                "Case records only, so point the Outbound Message at Case.",
                status_code=400,
            )
        case = {"attributes": {"type": notification.sobject_type}}
        case.update(notification.fields)
        case_id = case.get("Id")
        try:
            record_key = salesforce_id18(case_id)
        except ValueError:
            raise outbound_error(
                f"Salesforce Notification {notification.notification_id} has no "
                f"valid sf:Id (got {case_id!r:.40}); include the Id field in the "
                "Outbound Message.",
                status_code=400,
            ) from None
        version = case.get("SystemModstamp") or case.get("LastModifiedDate")
        return NewInboxEvent(
            system=self.system,
            instance=self.instance,
            delivery_id=notification.notification_id,
            record_key=record_key,
            record_version=str(version) if version else None,
            event_type=notification.sobject_type,
            record=case,
            headers=headers,
            received_at=received_at,
        )

    # Write-back

    def deliver(self, action: DeliveryAction) -> DeliveryResult:
        """Set the case owner to the group's queue, then add a private comment.

        The comment carries the marker and is written last, so that a retry after
        a crash between the two writes still sets the owner.

        Raises:
            RetryableDeliveryError: HTTP 5xx, REQUEST_LIMIT_EXCEEDED, a timeout or
                a lost connection.
            PermanentDeliveryError: any other API error or an unknown queue.
        """
        self.check_deliverable(action)
        if action.kind == "task":
            return deliver_task(self, action)
        what = self.describe(action)
        case_id = self._case_id(action)

        if not action.first_attempt and self._marker_present(
            case_id=case_id, marker=action.marker, what=what
        ):
            logger.info(
                "%s: marker %s already present, nothing written", what, action.marker
            )
            return DeliveryResult(marker_found=True, details={"case_id": case_id})

        queue_name = self._queue_name(action)
        if queue_name is not None:
            queue_id = self._queue_id(queue_name)
            self._call(
                f"{what}: setting the owner",
                lambda sf: _sobject(sf, "Case").update(case_id, {"OwnerId": queue_id}),
            )
        comment = {
            "ParentId": case_id,
            "CommentBody": note_text(action, target=queue_name, noun="case"),
            # An unpublished comment is visible to agents only, not to the customer.
            "IsPublished": False,
        }
        self._call(
            f"{what}: adding the comment",
            lambda sf: _sobject(sf, "CaseComment").create(comment),
        )
        logger.info("%s: updated case %s", what, case_id)
        written = [queue_name, self._queue_ids[queue_name]] if queue_name else []
        details = {"case_id": case_id, "queue": queue_name, "written_group": written}
        return DeliveryResult(marker_found=False, details=details)

    # Helpers of the task delivery in connectors.salesforce.tasks.

    def case_id(self, action: DeliveryAction) -> str:
        """Return the 18-character Id of the action's case."""
        return self._case_id(action)

    def call(self, label: str, call: Callable[[Salesforce], ResultT]) -> ResultT:
        """Run an API call, turning its errors into delivery errors."""
        return self._call(label, call)

    def sobject(self, sf: Salesforce, name: str) -> SFType:
        """Return the REST resource of an sObject type."""
        return _sobject(sf, name)

    def _case_id(self, action: DeliveryAction) -> str:
        if action.record_id:
            try:
                return salesforce_id18(action.record_id)
            except ValueError:
                raise PermanentDeliveryError(
                    f"{self.describe(action)}: record id {action.record_id!r} is not a "
                    "15- or 18-character Case Id."
                ) from None
        number = action.ticket_key.partition(":")[2] or action.ticket_key
        soql = format_soql("SELECT Id FROM Case WHERE CaseNumber = {}", number)
        result = self._call("Salesforce case lookup", lambda sf: sf.query(soql))
        records = result.get("records", [])
        if not records:
            raise PermanentDeliveryError(
                f"{self.describe(action)}: no Case has CaseNumber {number!r}."
            )
        return salesforce_id18(records[0]["Id"])

    def _marker_present(self, *, case_id: str, marker: str, what: str) -> bool:
        soql = format_soql(
            "SELECT Id, CommentBody FROM CaseComment WHERE ParentId = {}", case_id
        )
        comments = self._call(
            f"{what}: reading case comments", lambda sf: sf.query_all(soql)
        )
        return any(
            marker in str(row.get("CommentBody") or "")
            for row in comments.get("records", [])
        )

    def _queue_name(self, action: DeliveryAction) -> str | None:
        target = action.payload.get("target")
        if target:
            return str(target)
        group = action.payload.get("group")
        if not group:
            return None
        resolver_group = self.resolver_group(str(group))
        return resolver_group.targets.salesforce or resolver_group.name

    def _queue_id(self, name: str) -> str:
        cached = self._queue_ids.get(name)
        if cached is not None:
            return cached
        soql = format_soql(
            "SELECT Id FROM Group WHERE Type = 'Queue' AND Name = {}", name
        )
        result = self._call("Salesforce queue lookup", lambda sf: sf.query(soql))
        records = result.get("records", [])
        if len(records) != 1:
            found = "no queue" if not records else "several queues"
            raise PermanentDeliveryError(
                f"Salesforce has {found} named {name!r}; create one queue with that "
                "name, or set the group's targets.salesforce in taxonomy.yaml."
            )
        queue_id = salesforce_id18(records[0]["Id"])
        self._queue_ids[name] = queue_id
        return queue_id

    def _salesforce(self, *, renew: bool = False) -> Salesforce:
        with self._lock:
            if self._client is None or renew:
                self._client = self._login()
            return self._client

    def _login(self) -> Salesforce:
        settings = self.settings
        session = self._http_session or requests.Session()
        version = settings.api_version
        if settings.session_id is not None:
            return Salesforce(
                instance_url=settings.instance_url,
                session_id=settings.session_id.get_secret_value(),
                version=version,
                session=session,
            )
        return Salesforce(
            username=settings.username,
            password=_secret(settings.password),
            security_token=_secret(settings.security_token),
            domain=settings.domain,
            version=version,
            session=session,
        )

    def _call(self, what: str, call: Callable[[Salesforce], ResultT]) -> ResultT:
        try:
            try:
                return call(self._salesforce())
            except SalesforceExpiredSession:
                if self.settings.session_id is not None:
                    raise
                # A password login can be renewed; do it once, then give up.
                logger.warning("%s: session expired, logging in again", what)
                return call(self._salesforce(renew=True))
        except SalesforceError as exc:
            raise delivery_error(exc, what=what) from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise RetryableDeliveryError(
                f"{what} failed: {type(exc).__name__}; it will be retried."
            ) from None


def _org_id18(org_id: str) -> str:
    try:
        return salesforce_id18(org_id)
    except ValueError:
        raise outbound_error(
            "Salesforce Outbound Message has an invalid OrganizationId "
            f"{org_id!r:.40}; send the message as Salesforce builds it.",
            status_code=400,
        ) from None


def _sobject(sf: Salesforce, name: str) -> SFType:
    # Salesforce.__getattr__ is typed as a union with the bulk APIs.
    return cast(SFType, getattr(sf, name))


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def create_connector(
    *, instance: str = DEFAULT_INSTANCE, mappings: MappingSet | None = None
) -> SalesforceConnector:
    """Build the Salesforce connector of `instance` from its settings."""
    return SalesforceConnector(instance=instance, mappings=mappings)
