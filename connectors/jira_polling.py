"""Jira polling, assignment checks and `connectors check` through the jira client.

JQL compares `updated` to the minute, so a poll starts at the minute of its start
time and relies on the caller's overlap and de-duplication (issue id and its
`updated` time, which the API returns to the millisecond). Cloud searches page by
`nextPageToken` (search/jql); Server and Data Center by `startAt` (search).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jira import JIRA

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
from router.mapping.transforms import offset_datetime

logger = logging.getLogger(__name__)

JQL_TIME_FORMAT: Final = "%Y/%m/%d %H:%M"
POLL_EVENT_TYPE: Final = "poll"
GROUP_LABEL_PREFIX: Final = "opsroute-"
_DISPLAY_NAME: Final = "Jira"


def jql_string(value: str) -> str:
    """Return `value` as a quoted JQL string, with `\\` and `"` escaped.

    Raises:
        ValueError: the value contains a line break, which JQL strings cannot hold.
    """
    if "\n" in value or "\r" in value:
        raise ValueError(f"JQL value {value!r:.60} contains a line break")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def poll_jql(*, since: datetime, zone: ZoneInfo, project: str | None) -> str:
    """Return the JQL of a poll: issues updated since the minute of `since`."""
    moment = since.astimezone(zone).strftime(JQL_TIME_FORMAT)
    conditions = [f"updated >= {jql_string(moment)}"]
    if project:
        conditions.insert(0, f"project = {jql_string(project)}")
    return " AND ".join(conditions) + " ORDER BY updated ASC, key ASC"


def issue_of(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the issue of a webhook body, or the record itself if it is an issue."""
    issue = record.get("issue")
    if "webhookEvent" in record and isinstance(issue, Mapping):
        return issue
    return record


class JiraPolling:
    """Polling and checks of `JiraConnector`; it supplies the attributes."""

    system: ClassVar[str]
    instance: str
    settings: Any
    mappings: Any
    _jira_client: Callable[[], JIRA]
    _call: Callable[..., Any]
    missing_settings: Callable[[], list[str]]

    retry_policy: PollRetryPolicy = PollRetryPolicy()

    def poll(self, since: datetime) -> Iterator[PolledRecord]:
        """Yield the issues updated since the minute of `since`, oldest first.

        Raises:
            PollError: the site is unreachable, rejected the request or kept rate
                limiting.
        """
        missing = self.missing_settings()
        if missing:
            raise PollError(
                f"Jira polling needs API credentials: set {', '.join(missing)}."
            )
        jql = poll_jql(
            since=since, zone=self._jql_zone(), project=self.settings.project
        )
        page_size = int(self.settings.poll_page_size)
        if self._is_cloud():
            pages = self._token_pages(jql, page_size)
        else:
            pages = self._offset_pages(jql, page_size)
        for issues in pages:
            for issue in issues:
                yield self._polled(issue)

    def _token_pages(self, jql: str, page_size: int) -> Iterator[list[dict[str, Any]]]:
        client = self._jira_client()
        token: str | None = None
        while True:
            page = self._search(
                partial(
                    client.enhanced_search_issues,
                    jql,
                    nextPageToken=token,
                    maxResults=page_size,
                    fields="*all",
                    json_result=True,
                )
            )
            yield list(page.get("issues") or [])
            token = page.get("nextPageToken")
            if not token or page.get("isLast"):
                return

    def _offset_pages(self, jql: str, page_size: int) -> Iterator[list[dict[str, Any]]]:
        client = self._jira_client()
        start = 0
        while True:
            page = self._search(
                partial(
                    client.search_issues,
                    jql,
                    startAt=start,
                    maxResults=page_size,
                    fields="*all",
                    json_result=True,
                )
            )
            issues = list(page.get("issues") or [])
            yield issues
            start += len(issues)
            if not issues or start >= int(page.get("total") or 0):
                return

    def _search(self, call: Callable[[], Any]) -> dict[str, Any]:
        result = call_with_retries(
            lambda: self._call("Jira search", call),
            what="Jira poll search",
            describe=self._describe_status,
            policy=self.retry_policy,
        )
        return dict(result)

    def _polled(self, issue: dict[str, Any]) -> PolledRecord:
        fields = issue.get("fields") or {}
        updated = fields.get("updated")
        if not issue.get("id") or not updated:
            raise PollError(
                "Jira search returned an issue without id or fields.updated "
                f"(key {issue.get('key')!r:.40}); the search must return all fields."
            )
        event = NewInboxEvent(
            system=self.system,
            instance=self.instance,
            delivery_id=None,
            record_key=str(issue["id"]),
            record_version=str(updated),
            event_type=POLL_EVENT_TYPE,
            record=issue,
            headers={},
            received_at=utc_now(),
        )
        return PolledRecord(
            event=event, updated_at=offset_datetime(updated).astimezone(UTC)
        )

    def _is_cloud(self) -> bool:
        deployment = str(self.settings.deployment)
        if deployment == "auto":
            return str(self.settings.url or "").rstrip("/").endswith(".atlassian.net")
        return deployment == "cloud"

    def _jql_zone(self) -> ZoneInfo:
        name = str(self.settings.jql_time_zone)
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            setting = self.settings.setting_name("jql_time_zone", self.instance)
            raise PollError(
                f"{setting} {name!r} is not a time zone; use an IANA name such as "
                "UTC or Europe/Berlin."
            ) from None

    def _describe_status(self, status: int, detail: str) -> str:
        user = self.settings.setting_name("user", self.instance)
        token = self.settings.setting_name("api_token", self.instance)
        return http_problem(
            status,
            system=_DISPLAY_NAME,
            credentials=f"{user} and {token}",
            detail=detail,
        )

    # Assignment

    def reroute_label(self) -> str | None:
        """Return the label that sends an issue back for routing, if configured."""
        mapping = self.mappings.systems.get(self.system)
        return mapping.reroute_label if mapping is not None else None

    def assignment(self, record: Mapping[str, Any]) -> Assignment:
        """Return the issue's components and group labels, and who changed it.

        The group is the first component, else the first `opsroute-` label other
        than the reroute label. A webhook body names the actor in `user`.
        """
        fields = issue_of(record).get("fields") or {}
        components = [
            str(item.get("name"))
            for item in fields.get("components") or []
            if isinstance(item, Mapping) and item.get("name")
        ]
        labels = [str(label) for label in fields.get("labels") or []]
        reroute = self.reroute_label()
        group_labels = [
            label
            for label in labels
            if label.startswith(GROUP_LABEL_PREFIX) and label != reroute
        ]
        names = components + group_labels
        actor = record.get("user") if "webhookEvent" in record else None
        actor_ids = _actor_ids(actor)
        ours = {self.settings.user, self.settings.integration_account_id} - {None}
        return Assignment(
            group=names[0] if names else None,
            identifiers=frozenset(names),
            sent_back=reroute is not None and reroute in labels,
            by_integration=bool(actor_ids & ours),
            changed_by=next(iter(sorted(actor_ids)), None),
        )

    # Checks

    def check(self) -> list[CheckResult]:
        """Try the credentials, then read the configured project."""
        missing = self.missing_settings()
        if missing:
            return [
                CheckResult(
                    "credentials", False, f"Not configured: set {', '.join(missing)}."
                )
            ]
        client = self._jira_client()
        results = [self._check("log in (myself)", client.myself)]
        project = self.settings.project
        if project and results[0].ok:
            results.append(
                self._check(f"read project {project}", lambda: client.project(project))
            )
        return results

    def _check(self, name: str, call: Callable[[], Any]) -> CheckResult:
        try:
            self._call(f"Jira check {name}", call)
        except (PermanentDeliveryError, RetryableDeliveryError) as error:
            status = getattr(error, "status_code", 0)
            if status == 404 and name.startswith("read project"):
                setting = self.settings.setting_name("project", self.instance)
                return CheckResult(
                    name,
                    False,
                    f"Jira has no project {self.settings.project!r} visible to the "
                    f"API user (HTTP 404); check {setting} and the project's "
                    "permissions.",
                )
            message = self._describe_status(status, "") if status else str(error)
            return CheckResult(name, False, message)
        return CheckResult(name, True, "OK")


def _actor_ids(actor: Any) -> set[str]:
    if not isinstance(actor, Mapping):
        return set()
    return {
        str(actor[key])
        for key in ("accountId", "name", "emailAddress", "key")
        if actor.get(key)
    }
