"""Jira: issue webhooks in, component or label and a comment out through `jira`.

Jira signs admin-registered webhooks with `X-Hub-Signature: sha256=<hex
HMAC-SHA256 of the raw body>` when a secret is set, and sends a delivery id in
`X-Atlassian-Webhook-Identifier` that stays the same across its retries.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import requests
from jira import JIRA, JIRAError

from connectors.base import (
    BaseConnector,
    HttpPermanentError,
    filter_headers,
    http_delivery_error,
    note_text,
    parse_json_object,
    person_assignee,
    require_content_type,
    utc_now,
    verify_hmac_sha256,
)
from connectors.jira_polling import JiraPolling
from connectors.jira_tasks import deliver_task
from connectors.settings import JiraSettings
from router.intake.plugin import (
    DEFAULT_INSTANCE,
    DeliveryAction,
    DeliveryResult,
    NewInboxEvent,
    ParsedWebhook,
    RetryableDeliveryError,
    WebhookError,
    WebhookRequest,
)
from router.mapping import MappingSet
from router.mapping.transforms import adf_text
from router.schemas import Ticket

logger = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "x-hub-signature"
DELIVERY_HEADER: Final = "x-atlassian-webhook-identifier"
# Webhook events that can route a ticket; others are acknowledged and not stored.
ROUTED_EVENTS: Final = frozenset({"jira:issue_created", "jira:issue_updated"})
SERVICE_DESK_PROJECT_TYPE: Final = "service_desk"
_LABEL_CHARS: Final = re.compile(r"[^a-z0-9]+")
_DISPLAY_NAME: Final = "Jira"
_DETAIL_CHARS: Final = 200

ResultT = TypeVar("ResultT")


def group_label(group: str) -> str:
    """Return the label that marks an issue as routed to `group`."""
    slug = _LABEL_CHARS.sub("-", group.lower()).strip("-")
    return f"opsroute-{slug}"


def _is_webhook_body(record: Mapping[str, Any]) -> bool:
    return "webhookEvent" in record and isinstance(record.get("issue"), Mapping)


class JiraConnector(JiraPolling, BaseConnector):
    """One Jira site: its issue webhooks, polling and REST write-back."""

    system = "jira"
    credential_fields = ("url", "user", "api_token")

    def __init__(
        self,
        *,
        instance: str = DEFAULT_INSTANCE,
        mappings: MappingSet | None = None,
        settings: JiraSettings | None = None,
    ) -> None:
        super().__init__(instance=instance, mappings=mappings)
        self.settings = settings or JiraSettings.for_instance(instance)
        self._client: JIRA | None = None
        self._lock = threading.Lock()

    # Webhooks

    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        """Verify `X-Hub-Signature`, then parse an issue webhook.

        Issue-created and issue-updated events become one inbox event each, which
        keeps the whole webhook body (issue and changelog) as its record. Other
        events are acknowledged without an event.

        Raises:
            WebhookError: 401 without a valid signature, 415 for a body that is
                not JSON, 400 for a malformed body, 503 when the webhook secret is
                not configured.
        """
        self._verify_signature(request)
        require_content_type(
            request, expected=("application/json",), system=_DISPLAY_NAME
        )
        body = parse_json_object(request.body, system=_DISPLAY_NAME)

        event_type = body.get("webhookEvent")
        if not isinstance(event_type, str) or not event_type:
            raise WebhookError(
                "Jira webhook body has no webhookEvent; register the webhook for "
                "issue created and issue updated events.",
                status_code=400,
            )
        if event_type not in ROUTED_EVENTS:
            logger.debug("Ignored Jira webhook event %s", event_type)
            return ParsedWebhook(events=[])

        issue = body.get("issue")
        issue_id = issue.get("id") if isinstance(issue, dict) else None
        if issue_id in (None, ""):
            raise WebhookError(
                f"Jira webhook body of event {event_type} has no issue.id; send the "
                "issue with the event.",
                status_code=400,
            )
        event = NewInboxEvent(
            system=self.system,
            instance=self.instance,
            delivery_id=request.headers.get(DELIVERY_HEADER) or None,
            record_key=str(issue_id),
            record_version=_record_version(body),
            event_type=event_type,
            record=body,
            headers=filter_headers(request.headers),
            received_at=utc_now(),
        )
        return ParsedWebhook(events=[event])

    def _verify_signature(self, request: WebhookRequest) -> None:
        secret = self.settings.webhook_secret
        if secret is None:
            raise WebhookError(
                "Jira webhooks are not configured: set "
                f"{self.webhook_secret_setting()}.",
                status_code=503,
            )
        signature = request.headers.get(SIGNATURE_HEADER)
        if signature is None:
            raise WebhookError(
                "Jira webhook rejected: header X-Hub-Signature is missing; set the "
                "webhook's secret in Jira to the value of "
                f"{JiraSettings.setting_name('webhook_secret', self.instance)}.",
                status_code=401,
            )
        verify_hmac_sha256(
            body=request.body,
            signature=signature,
            secret=secret.get_secret_value(),
            header="X-Hub-Signature",
            system=_DISPLAY_NAME,
        )

    def to_ticket(self, record: Mapping[str, Any], *, mappings: MappingSet) -> Ticket:
        """Turn an issue, or a webhook body that contains one, into a Ticket."""
        if _is_webhook_body(record):
            return mappings.normalize(self.system, record["issue"])
        return mappings.normalize(self.system, record)

    # Write-back

    def deliver(self, action: DeliveryAction) -> DeliveryResult:
        """Set the issue's component (or add a group label), then add a comment.

        The comment carries the marker and is written last, so that a retry after
        a crash between the two writes still sets the component.

        Raises:
            RetryableDeliveryError: HTTP 429 or 5xx, a timeout or a lost connection.
            PermanentDeliveryError: any other HTTP error or an unknown group.
        """
        self.check_deliverable(action)
        if action.kind == "task":
            return deliver_task(self, action)
        what = self.describe(action)
        client = self._jira_client()
        issue_key = action.record_id or action.ticket_key.partition(":")[2]

        if not action.first_attempt and self._marker_present(
            client, issue_key=issue_key, marker=action.marker, what=what
        ):
            logger.info(
                "%s: marker %s already present, nothing written", what, action.marker
            )
            return DeliveryResult(marker_found=True, details={"issue": issue_key})

        issue = self._call(
            f"{what}: reading the issue",
            lambda: client.issue(issue_key, fields="project,components,labels"),
        )
        changes = self._field_changes(action)
        if changes:
            self._call(f"{what}: updating the issue", lambda: issue.update(**changes))

        assignee = person_assignee(action.payload)
        assignee_problem = None
        if assignee is not None:
            assignee_problem = self._assign(client, issue_key, assignee, what=what)

        project = getattr(issue.fields, "project", None)
        internal = getattr(project, "projectTypeKey", "") == SERVICE_DESK_PROJECT_TYPE
        body = note_text(action, target=action.payload.get("group"), noun="issue")
        if assignee_problem is not None:
            body = f"{assignee_problem}\n{body}"
        self._call(
            f"{what}: adding the comment",
            lambda: self._add_comment(client, issue_key, body, internal=internal),
        )
        logger.info("%s: updated %s and added a comment", what, issue_key)
        details = {
            "issue": issue_key,
            "changes": changes,
            "written_group": _written_group(changes),
            "assignee": assignee if assignee_problem is None else None,
        }
        return DeliveryResult(marker_found=False, details=details)

    def _assign(
        self, client: JIRA, issue_key: str, assignee: str, *, what: str
    ) -> str | None:
        """Set the issue's assignee; return the reason it failed, or None.

        The assignee endpoint needs only the "Assign issues" permission. It takes
        the account id on Cloud and the user name on Server and Data Center. The
        request is sent with the client's session, because `JIRA.assign_issue`
        (jira 3.10) first searches users for the value, which an id may not match.

        Raises:
            RetryableDeliveryError: HTTP 429 or 5xx, a timeout or a lost connection.
        """
        identity = "accountId" if self._is_cloud() else "name"
        url = client._get_latest_url(f"issue/{issue_key}/assignee")
        try:
            self._call(
                f"{what}: setting the assignee",
                lambda: client._session.put(url, data=json.dumps({identity: assignee})),
            )
        except HttpPermanentError as error:
            # The comment still names the person, so the write-back goes on.
            logger.warning(
                "%s: Jira rejected assignee %s with HTTP %d: %s",
                what,
                assignee,
                error.status_code,
                error.detail,
            )
            return (
                f"opsroute could not make {assignee} the assignee: Jira answered "
                f"HTTP {error.status_code}."
            )
        logger.info("%s: assigned %s to %s", what, issue_key, assignee)
        return None

    def _marker_present(
        self, client: Any, *, issue_key: str, marker: str, what: str
    ) -> bool:
        # Newest first, because the marker of an earlier attempt is among the
        # latest comments.
        # NOTE: Only the first page of comments is read (Jira's page size).
        comments = self._call(
            f"{what}: reading comments",
            lambda: client.comments(issue_key, order_by="-created"),
        )
        return any(marker in _comment_text(comment) for comment in comments)

    # Helpers of the task delivery in connectors.jira_tasks.

    def client(self) -> JIRA:
        """Return the Jira client, built on first use."""
        return self._jira_client()

    def call(self, label: str, call: Callable[[], ResultT]) -> ResultT:
        """Run a client call, turning its errors into delivery errors."""
        return self._call(label, call)

    def group_component(self, name: str) -> str | None:
        """Return the Jira component of a taxonomy group, or None if it has none."""
        for group in self.mappings.taxonomy.resolver_groups:
            if group.name == name and group.targets.jira is not None:
                return group.targets.jira.component
        return None

    def _field_changes(self, action: DeliveryAction) -> dict[str, Any]:
        group = action.payload.get("group")
        if not group:
            return {}
        # Routing again consumes the reroute label, so the next update of the
        # issue does not send it back once more.
        reroute = self.reroute_label()
        removal = [{"remove": reroute}] if reroute else []
        target = self.resolver_group(str(group)).targets.jira
        fields: dict[str, Any] = {}
        if target is not None and target.component:
            fields["components"] = [{"name": target.component}]
        team_field = self._team_field()
        if team_field is not None:
            team = target.team if target is not None and target.team else str(group)
            fields[team_field] = {"value": team}
        if target is not None and target.assignee:
            # Cloud (REST API v3) identifies users by account id, Server by name.
            key = "accountId" if self.settings.rest_api_version == "3" else "name"
            fields["assignee"] = {key: target.assignee}
        if fields:
            changes: dict[str, Any] = {"fields": fields}
            if removal:
                changes["update"] = {"labels": removal}
            return changes
        return {"update": {"labels": [{"add": group_label(str(group))}, *removal]}}

    def _team_field(self) -> str | None:
        """Return the team custom field's id from `write_back.group_field`, if set."""
        write_back = self.mappings.system(self.system).write_back
        path = write_back.group_field if write_back is not None else None
        if not path:
            return None
        # The mapping names record paths, such as fields.customfield_10050.
        return path.removeprefix("fields.")

    def _add_comment(
        self, client: JIRA, issue_key: str, body: str, *, internal: bool
    ) -> None:
        if self.settings.rest_api_version != "3":
            client.add_comment(issue_key, body, is_internal=internal)
            return
        # REST API v3 takes comment bodies as Atlassian Document Format, which
        # the client's add_comment does not build.
        document: dict[str, Any] = {"body": adf_document(body)}
        if internal:
            document["properties"] = [
                {"key": "sd.public.comment", "value": {"internal": True}}
            ]
        url = client._get_url(f"issue/{issue_key}/comment")
        client._session.post(url, data=json.dumps(document))

    def _jira_client(self) -> JIRA:
        with self._lock:
            if self._client is None:
                token = self.settings.api_token
                self._client = JIRA(
                    server=str(self.settings.url),
                    basic_auth=(
                        str(self.settings.user),
                        token.get_secret_value() if token else "",
                    ),
                    get_server_info=False,
                    # The outbox retries with backoff, so the client must not.
                    max_retries=0,
                    timeout=self.settings.timeout_seconds,
                    # v2 (the default) is served by Cloud and Server and takes
                    # plain-text comments; v3 is Cloud only and takes ADF.
                    options={"rest_api_version": self.settings.rest_api_version},
                )
                if self._is_cloud():
                    # The client reads the deployment from serverInfo, which
                    # get_server_info=False skips, and runs the token-paged
                    # search only when deploymentType is Cloud.
                    self._client.deploymentType = "Cloud"
            return self._client

    def _call(self, what: str, call: Callable[[], ResultT]) -> ResultT:
        try:
            return call()
        except JIRAError as exc:
            response = exc.response
            retry_after = (
                response.headers.get("Retry-After") if response is not None else None
            )
            # JIRAError's str() may include request headers, so only its text is used.
            raise http_delivery_error(
                status=exc.status_code or 0,
                what=what,
                detail=str(exc.text or "")[:_DETAIL_CHARS],
                retry_after=retry_after,
            ) from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise RetryableDeliveryError(
                f"{what} failed: {type(exc).__name__} after at most "
                f"{self.settings.timeout_seconds:g} s; it will be retried."
            ) from None


def _record_version(body: Mapping[str, Any]) -> str | None:
    issue = body.get("issue") or {}
    fields = issue.get("fields") if isinstance(issue, Mapping) else None
    updated = fields.get("updated") if isinstance(fields, Mapping) else None
    if updated:
        return str(updated)
    timestamp = body.get("timestamp")
    return str(timestamp) if timestamp is not None else None


def adf_document(text: str) -> dict[str, Any]:
    """Return `text` as an ADF document with one paragraph per line."""
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]}
        if line
        else {"type": "paragraph", "content": []}
        for line in text.split("\n")
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


def _written_group(changes: Mapping[str, Any]) -> list[str]:
    components = (changes.get("fields") or {}).get("components") or []
    names = [str(item["name"]) for item in components if item.get("name")]
    for operation in (changes.get("update") or {}).get("labels") or []:
        if "add" in operation:
            names.append(str(operation["add"]))
    return names


def _comment_text(comment: Any) -> str:
    raw = getattr(comment, "raw", None)
    body = raw.get("body", "") if isinstance(raw, Mapping) else ""
    if isinstance(body, str):
        return body
    # REST API v3 returns comment bodies as Atlassian Document Format.
    try:
        return adf_text(body)
    except (TypeError, ValueError):
        return str(body)


def create_connector(
    *, instance: str = DEFAULT_INSTANCE, mappings: MappingSet | None = None
) -> JiraConnector:
    """Build the Jira connector of `instance` from its settings."""
    return JiraConnector(instance=instance, mappings=mappings)
