"""ServiceNow: Business Rule webhooks in, assignment and work note out through pysnow.

A Business Rule or Flow posts the record as a flat JSON object of its fields (the
Table API shape, `sys_id` required, `table` optional), signed with
`X-Opsroute-Signature: sha256=<hex HMAC-SHA256 of the raw body>` or sent with
`Authorization: Bearer <secret>`. Write-back sets the assignment group and adds a
work note containing the action's marker, in one PATCH of the record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import pysnow
import requests
from pysnow.exceptions import PysnowException

from connectors.base import (
    BaseConnector,
    filter_headers,
    http_delivery_error,
    note_text,
    parse_json_object,
    person_assignee,
    require_content_type,
    utc_now,
    verify_bearer_token,
    verify_hmac_sha256,
)
from connectors.servicenow_polling import ServiceNowPolling
from connectors.servicenow_tasks import deliver_task
from connectors.settings import ServiceNowSettings
from router.intake.plugin import (
    DEFAULT_INSTANCE,
    DeliveryAction,
    DeliveryResult,
    NewInboxEvent,
    ParsedWebhook,
    PermanentDeliveryError,
    RetryableDeliveryError,
    WebhookError,
    WebhookRequest,
)
from router.mapping import MappingSet

logger = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "x-opsroute-signature"
DELIVERY_HEADER: Final = "x-opsroute-delivery"
_SYS_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_TABLE_NAME: Final = re.compile(r"^[a-z][a-z0-9_]*$")
_DISPLAY_NAME: Final = "ServiceNow"
# Error texts from the vendor are cut to this many characters in our messages.
_DETAIL_CHARS: Final = 200

ResultT = TypeVar("ResultT")


def encoded_query_value(value: str, *, what: str) -> str:
    """Return `value` for an encoded query, or raise if it could change the query.

    ServiceNow's encoded queries separate conditions with `^` and have no escape
    for it, so a value containing `^` or a line break is rejected.

    Raises:
        PermanentDeliveryError: the value contains `^` or a line break.
    """
    if "^" in value or "\n" in value or "\r" in value:
        raise PermanentDeliveryError(
            f"{what} {value!r} contains '^' or a line break, which ServiceNow "
            "encoded queries cannot express; rename it in the taxonomy or in "
            "ServiceNow."
        )
    return value


def _client_location(instance: str) -> dict[str, Any]:
    # "acme" is an instance name, "acme.service-now.com" a host, and
    # "http://127.0.0.1:8001" a URL whose scheme decides TLS.
    if "://" in instance:
        parts = urlsplit(instance)
        return {"host": parts.netloc, "use_ssl": parts.scheme == "https"}
    if "." in instance or ":" in instance:
        return {"host": instance, "use_ssl": True}
    return {"instance": instance, "use_ssl": True}


def _error_detail(response: requests.Response | None) -> str:
    if response is None:
        return ""
    try:
        error = response.json().get("error") or {}
        text = f"{error.get('message') or ''} {error.get('detail') or ''}".strip()
    except (ValueError, AttributeError):
        text = response.text.strip()
    return text[:_DETAIL_CHARS]


class ServiceNowConnector(ServiceNowPolling, BaseConnector):
    """One ServiceNow instance: webhook, polling and Table API write-back."""

    system = "servicenow"
    credential_fields = ("instance", "user", "password")

    def __init__(
        self,
        *,
        instance: str = DEFAULT_INSTANCE,
        mappings: MappingSet | None = None,
        settings: ServiceNowSettings | None = None,
    ) -> None:
        super().__init__(instance=instance, mappings=mappings)
        self.settings = settings or ServiceNowSettings.for_instance(instance)
        self._client: pysnow.Client | None = None
        self._group_ids: dict[str, str] = {}
        self._lock = threading.Lock()

    # Webhooks

    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        """Authenticate a Business Rule webhook, then parse its record.

        Raises:
            WebhookError: 401 without a valid signature or token, 415 for a body
                that is not JSON, 400 for a malformed body or a missing `sys_id`,
                503 when the webhook secret is not configured.
        """
        self._authenticate(request)
        require_content_type(
            request, expected=("application/json",), system=_DISPLAY_NAME
        )
        record = parse_json_object(request.body, system=_DISPLAY_NAME)

        sys_id = record.get("sys_id")
        if not isinstance(sys_id, str) or not _SYS_ID.match(sys_id):
            raise WebhookError(
                f"ServiceNow webhook body has no valid sys_id (got {sys_id!r:.40}); "
                "send the record's 32-character sys_id, as current.getUniqueValue() "
                "returns it.",
                status_code=400,
            )
        event = NewInboxEvent(
            system=self.system,
            instance=self.instance,
            delivery_id=request.headers.get(DELIVERY_HEADER) or None,
            record_key=sys_id,
            record_version=_record_version(record, request.body),
            event_type=str(record.get("operation") or "update"),
            record=record,
            headers=filter_headers(request.headers),
            received_at=utc_now(),
        )
        return ParsedWebhook(events=[event])

    def _authenticate(self, request: WebhookRequest) -> None:
        secret_value = self.settings.webhook_secret
        if secret_value is None:
            raise WebhookError(
                "ServiceNow webhooks are not configured: set "
                f"{self.webhook_secret_setting()}.",
                status_code=503,
            )
        secret = secret_value.get_secret_value()
        signature = request.headers.get(SIGNATURE_HEADER)
        if signature is not None:
            verify_hmac_sha256(
                body=request.body,
                signature=signature,
                secret=secret,
                header="X-Opsroute-Signature",
                system=_DISPLAY_NAME,
            )
            return
        authorization = request.headers.get("authorization")
        if authorization is not None:
            verify_bearer_token(
                authorization=authorization, secret=secret, system=_DISPLAY_NAME
            )
            return
        raise WebhookError(
            "ServiceNow webhook rejected: header X-Opsroute-Signature is missing; "
            "send X-Opsroute-Signature: sha256=<hex HMAC-SHA256 of the raw body> or "
            "Authorization: Bearer <webhook secret>.",
            status_code=401,
        )

    # Write-back

    def deliver(self, action: DeliveryAction) -> DeliveryResult:
        """Set the record's assignment group and add a work note with the marker.

        On a retry, the marker is looked up in `sys_journal_field` first, because
        journal fields read back empty from the Table API; when it is there,
        nothing is written.

        Raises:
            RetryableDeliveryError: HTTP 429 or 5xx, a timeout or a lost connection.
            PermanentDeliveryError: any other HTTP error, an unknown group, or
                missing credentials.
        """
        self.check_deliverable(action)
        if action.kind == "task":
            return deliver_task(self, action)
        what = self.describe(action)
        table = self._table(action)
        sys_id = self._record_sys_id(action, table)
        note_field = self._write_back_field("note_field", "work_notes")

        if not action.first_attempt and self._marker_present(
            sys_id=sys_id, field=note_field, marker=action.marker
        ):
            logger.info(
                "%s: marker %s already present, nothing written", what, action.marker
            )
            return DeliveryResult(marker_found=True, details={"sys_id": sys_id})

        fields: dict[str, Any] = {}
        written: list[str] = []
        group_name = self._target_name(action)
        if group_name is not None:
            group_field = self._write_back_field("group_field", "assignment_group")
            fields[group_field] = self._group_sys_id(group_name)
            written = [group_name, fields[group_field]]
        assignee = person_assignee(action.payload)
        assignee_problem = None
        if assignee is not None:
            assignee_id, assignee_problem = self._user_sys_id(assignee)
            if assignee_id is not None:
                fields["assigned_to"] = assignee_id
        fields[note_field] = note_text(action, target=group_name, noun="ticket")
        if assignee_problem is not None:
            fields[note_field] = f"{assignee_problem}\n{fields[note_field]}"

        resource = self._resource(table)
        self._call(
            f"{what}: update of {table}/{sys_id}",
            lambda: resource.request(
                "PATCH", path_append=sys_id, data=json.dumps(fields)
            ).one(),
        )
        logger.info("%s: wrote %s to %s/%s", what, sorted(fields), table, sys_id)
        details = {
            "sys_id": sys_id,
            "table": table,
            "group": group_name,
            "written_group": written,
            "assigned_to": fields.get("assigned_to"),
        }
        return DeliveryResult(marker_found=False, details=details)

    # Helpers of the task delivery in connectors.servicenow_tasks.

    def parent_table(self, action: DeliveryAction) -> str:
        """Return the table of the action's record."""
        return self._table(action)

    def parent_sys_id(self, action: DeliveryAction, table: str) -> str:
        """Return the sys_id of the action's record, looked up by number if needed."""
        return self._record_sys_id(action, table)

    def query_table(
        self, table: str, *, query: str, fields: list[str], limit: int
    ) -> list[dict[str, Any]]:
        """Return the rows of an encoded query."""
        return self._get(table, query=query, fields=fields, limit=limit)

    def like_condition(self, field: str, value: str) -> str:
        """Return an encoded-query condition `field LIKE value`."""
        return f"{field}LIKE{encoded_query_value(value, what=field)}"

    def known_group_target(self, name: str) -> str | None:
        """Return the ServiceNow name of a taxonomy group, or None for a person."""
        for group in self.mappings.taxonomy.resolver_groups:
            if group.name == name:
                return group.targets.servicenow or group.name
        return None

    def group_sys_id(self, name: str) -> str:
        """Return the sys_id of the sys_user_group with that name."""
        return self._group_sys_id(name)

    def create_record(
        self, table: str, fields: dict[str, Any], *, what: str
    ) -> dict[str, Any]:
        """Insert a record into a table and return it."""
        resource = self._resource(table)
        created: dict[str, Any] = self._call(
            f"ServiceNow insert into {table} ({what})",
            lambda: resource.create(payload=fields).one(),
        )
        return created

    def _write_back_field(self, name: str, default: str) -> str:
        write_back = self.mappings.system(self.system).write_back
        value = getattr(write_back, name, None) if write_back else None
        return str(value or default)

    def _table(self, action: DeliveryAction) -> str:
        table = str(action.payload.get("table") or self.settings.table)
        if not _TABLE_NAME.match(table):
            raise PermanentDeliveryError(
                f"{self.describe(action)}: table {table!r} is not a ServiceNow table "
                "name; expected lower-case letters, digits and underscores."
            )
        return table

    def _record_sys_id(self, action: DeliveryAction, table: str) -> str:
        if action.record_id:
            if not _SYS_ID.match(action.record_id):
                raise PermanentDeliveryError(
                    f"{self.describe(action)}: record id {action.record_id!r} is not a "
                    "32-character sys_id."
                )
            return action.record_id
        number = action.ticket_key.partition(":")[2] or action.ticket_key
        query = f"number={encoded_query_value(number, what='record number')}"
        rows = self._get(table, query=query, fields=["sys_id"], limit=1)
        if not rows:
            raise PermanentDeliveryError(
                f"{self.describe(action)}: no {table} record has number {number!r}."
            )
        return str(rows[0]["sys_id"])

    def _target_name(self, action: DeliveryAction) -> str | None:
        target = action.payload.get("target")
        if target:
            return str(target)
        group = action.payload.get("group")
        if not group:
            return None
        resolver_group = self.resolver_group(str(group))
        return resolver_group.targets.servicenow or resolver_group.name

    def _group_sys_id(self, name: str) -> str:
        cached = self._group_ids.get(name)
        if cached is not None:
            return cached
        query = f"name={encoded_query_value(name, what='group name')}"
        rows = self._get("sys_user_group", query=query, fields=["sys_id"], limit=2)
        if not rows:
            raise PermanentDeliveryError(
                f"ServiceNow has no group named {name!r} in sys_user_group; create "
                "it, or set the group's targets.servicenow in taxonomy.yaml."
            )
        if len(rows) > 1:
            raise PermanentDeliveryError(
                f"ServiceNow has several groups named {name!r} in sys_user_group; "
                "rename one, or set targets.servicenow to a unique name."
            )
        sys_id = str(rows[0]["sys_id"])
        self._group_ids[name] = sys_id
        return sys_id

    def _user_sys_id(self, user_name: str) -> tuple[str | None, str | None]:
        """Look up the active `sys_user` whose user_name is `user_name`.

        Returns:
            The user's sys_id and None, or None and the reason for the note. A
            value that is already a sys_id is returned unchanged.
        """
        if _SYS_ID.match(user_name):
            return user_name, None
        try:
            value = encoded_query_value(user_name, what="user name")
        except PermanentDeliveryError as error:
            return None, f"opsroute could not make the person the assignee: {error}"
        query = f"user_name={value}^active=true"
        rows = self._get("sys_user", query=query, fields=["sys_id"], limit=2)
        if len(rows) == 1:
            return str(rows[0]["sys_id"]), None
        logger.warning(
            "ServiceNow has %d active users named %r; the ticket keeps its assignee",
            len(rows),
            user_name,
        )
        return None, (
            f"opsroute could not make {user_name} the assignee: ServiceNow has no "
            "single active sys_user with that user_name."
        )

    def _marker_present(self, *, sys_id: str, field: str, marker: str) -> bool:
        query = (
            f"element_id={sys_id}^element={field}"
            f"^valueLIKE{encoded_query_value(marker, what='marker')}"
        )
        rows = self._get("sys_journal_field", query=query, fields=["sys_id"], limit=1)
        return bool(rows)

    def _get(
        self, table: str, *, query: str, fields: list[str], limit: int
    ) -> list[dict[str, Any]]:
        resource = self._resource(table)
        return self._call(
            f"ServiceNow query of {table}",
            lambda: list(resource.get(query=query, fields=fields, limit=limit).all()),
        )

    def _resource(self, table: str) -> Any:
        return self._pysnow_client().resource(
            api_path=f"/table/{table}", timeout=self.settings.timeout_seconds
        )

    def _pysnow_client(self) -> pysnow.Client:
        with self._lock:
            if self._client is None:
                password = self.settings.password
                self._client = pysnow.Client(
                    **_client_location(str(self.settings.instance)),
                    user=self.settings.user,
                    password=password.get_secret_value() if password else None,
                )
            return self._client

    def _call(self, what: str, call: Callable[[], ResultT]) -> ResultT:
        try:
            return call()
        except requests.HTTPError as exc:
            response = exc.response
            status = response.status_code if response is not None else 0
            retry_after = (
                response.headers.get("Retry-After") if response is not None else None
            )
            raise http_delivery_error(
                status=status,
                what=what,
                detail=_error_detail(response),
                retry_after=retry_after,
            ) from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise RetryableDeliveryError(
                f"{what} failed: {type(exc).__name__} after at most "
                f"{self.settings.timeout_seconds:g} s; it will be retried."
            ) from None
        except PysnowException as exc:
            raise PermanentDeliveryError(
                f"{what} returned an unexpected response: {str(exc)[:_DETAIL_CHARS]}"
            ) from None


def _record_version(record: dict[str, Any], body: bytes) -> str:
    for field in ("sys_mod_count", "sys_updated_on"):
        value = record.get(field)
        if value not in (None, ""):
            return str(value)
    # Without a version field, an identical body is a duplicate and any change is not.
    return "sha256:" + hashlib.sha256(body).hexdigest()[:32]


def create_connector(
    *, instance: str = DEFAULT_INSTANCE, mappings: MappingSet | None = None
) -> ServiceNowConnector:
    """Build the ServiceNow connector of `instance` from its settings."""
    return ServiceNowConnector(instance=instance, mappings=mappings)
