"""A fake Jira REST API (v2 and v3): issues, updates, comments and searches.

It implements `GET` and `PUT /rest/api/{2,3}/issue/<id or key>`, `GET` and `POST
/rest/api/{2,3}/issue/<id or key>/comment`, `PUT .../assignee`, `POST
/rest/api/{2,3}/issue` (which adds a created sub-task to its parent's `subtasks`),
the offset-paged `search` and the token-paged `search/jql`, `myself`, `field` and
`project/<key>`, with Basic authentication. Searches understand the JQL the
connector writes:
`[project = "<key>" AND ]updated >= "<yyyy/MM/dd HH:mm>"` ordered by `updated`
and `key`, with dates in UTC. Each issue's `self` URL is built from the
request's Host header, as the jira client sends updates to that URL.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from router.sandbox.server import (
    FakeResponse,
    FakeServer,
    RecordedCall,
    json_response,
)

_ISSUE_PATH = re.compile(
    r"^/rest/api/(?:2|3|latest)/issue/([^/]+)(?:/(comment|assignee))?$"
)
_CREATE_PATH = re.compile(r"^/rest/api/(?:2|3|latest)/issue/?$")
_SEARCH_PATH = re.compile(r"^/rest/api/(?:2|3|latest)/search(/jql)?$")
_OTHER_PATH = re.compile(r"^/rest/api/(?:2|3|latest)/(myself|field|project/[^/]+)$")
# A JQL string literal with backslash escapes, as the connector writes it.
_LITERAL = r'"((?:[^"\\]|\\.)*)"'
_POLL_JQL = re.compile(
    r"^(?:project = "
    + _LITERAL
    + r" AND )?updated >= "
    + _LITERAL
    + r" ORDER BY updated ASC, key ASC$"
)
JIRA_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


def jira_time(moment: datetime) -> str:
    """Return `moment` as Jira writes `updated`: milliseconds and a +0000 offset."""
    return moment.astimezone(UTC).strftime(JIRA_TIME_FORMAT)[:-3] + "+0000"


def _unescape(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal)


def _issue_order(issue: dict[str, Any]) -> tuple[datetime, str, int]:
    updated = datetime.fromisoformat(issue["fields"]["updated"])
    project, _, number = str(issue["key"]).partition("-")
    return updated, project, int(number) if number.isdigit() else 0


def jira_error(status: int, message: str) -> FakeResponse:
    """Return an error in Jira's shape."""
    return json_response(status, {"errorMessages": [message], "errors": {}})


class FakeJira(FakeServer):
    """One Jira site with Basic authentication (e-mail and API token)."""

    def __init__(
        self, *, user: str = "bot@example.com", token: str = "jira-token", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.user = user
        self.token = token
        self.issues: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self.forbidden_projects: set[str] = set()
        # Account ids or user names that `PUT .../assignee` accepts; None: any.
        self.assignable_users: set[str] | None = None

    def add_issue(self, issue: dict[str, Any]) -> dict[str, Any]:
        """Store an issue (with `id`, `key` and `fields`); return it."""
        self.issues[str(issue["id"])] = issue
        self.comments.setdefault(str(issue["id"]), [])
        return issue

    def _find(self, id_or_key: str) -> dict[str, Any] | None:
        if id_or_key in self.issues:
            return self.issues[id_or_key]
        for issue in self.issues.values():
            if issue["key"] == id_or_key:
                return issue
        return None

    def handle(self, call: RecordedCall) -> FakeResponse:
        """Return the response to one REST request."""
        if call.basic_auth() != (self.user, self.token):
            return jira_error(401, "You are not authenticated.")
        if call.method == "POST" and _CREATE_PATH.match(call.path):
            return self._create(call)
        search = _SEARCH_PATH.match(call.path)
        if search is not None:
            return self._search(call, token_paged=search.group(1) is not None)
        other = _OTHER_PATH.match(call.path)
        if other is not None:
            return self._other(other.group(1))
        match = _ISSUE_PATH.match(call.path)
        if match is None:
            return jira_error(404, f"No endpoint {call.path}")
        issue = self._find(match.group(1))
        if issue is None:
            return jira_error(
                404, "Issue does not exist or you do not have permission."
            )
        host = call.headers.get("host", "127.0.0.1")
        if match.group(2) == "comment":
            return self._comments(issue, call)
        if match.group(2) == "assignee":
            return self._assign(issue, call)
        if call.method == "GET":
            issue_json = dict(
                issue, self=f"http://{host}/rest/api/2/issue/{issue['id']}"
            )
            return json_response(200, issue_json)
        if call.method == "PUT":
            return self._update(issue, call)
        return jira_error(405, f"Method {call.method} is not allowed.")

    def _create(self, call: RecordedCall) -> FakeResponse:
        fields = json.loads(call.body)["fields"]
        project = fields["project"]["key"]
        number = 1 + sum(
            1
            for issue in self.issues.values()
            if issue["key"].startswith(f"{project}-")
        )
        issue_id = str(20000 + len(self.issues))
        issue = self.add_issue(
            {"id": issue_id, "key": f"{project}-{1000 + number}", "fields": fields}
        )
        parent = self._find(fields.get("parent", {}).get("key", ""))
        if parent is not None:
            parent["fields"].setdefault("subtasks", []).append(
                {
                    "id": issue_id,
                    "key": issue["key"],
                    "fields": {"summary": fields.get("summary")},
                }
            )
        host = call.headers.get("host", "127.0.0.1")
        return json_response(
            201,
            {
                "id": issue_id,
                "key": issue["key"],
                "self": f"http://{host}/rest/api/2/issue/{issue_id}",
            },
        )

    def _update(self, issue: dict[str, Any], call: RecordedCall) -> FakeResponse:
        change = json.loads(call.body or b"{}")
        fields = issue.setdefault("fields", {})
        fields.update(change.get("fields") or {})
        for operation in (change.get("update") or {}).get("labels", []):
            labels = fields.setdefault("labels", [])
            if "add" in operation and operation["add"] not in labels:
                labels.append(operation["add"])
            if "remove" in operation and operation["remove"] in labels:
                labels.remove(operation["remove"])
        self.touch(issue)
        return FakeResponse(204)

    def _assign(self, issue: dict[str, Any], call: RecordedCall) -> FakeResponse:
        if call.method != "PUT":
            return jira_error(405, f"Method {call.method} is not allowed.")
        user = json.loads(call.body or b"{}")
        identity = user.get("accountId") or user.get("name")
        if self.assignable_users is not None and identity not in self.assignable_users:
            document = {
                "errorMessages": [],
                "errors": {"assignee": f"User '{identity}' cannot be assigned issues."},
            }
            return json_response(400, document)
        issue.setdefault("fields", {})["assignee"] = user
        self.touch(issue)
        return FakeResponse(204)

    def touch(self, issue: dict[str, Any], *, at: datetime | None = None) -> None:
        """Set an issue's `updated` time to `at`, or to now."""
        issue.setdefault("fields", {})["updated"] = jira_time(at or datetime.now(UTC))

    def _search(self, call: RecordedCall, *, token_paged: bool) -> FakeResponse:
        jql = call.param("jql") or ""
        match = _POLL_JQL.match(jql)
        if match is None:
            return jira_error(400, f"The fake cannot read the JQL {jql!r}.")
        project, since_text = match.groups()
        since = datetime.strptime(_unescape(since_text), "%Y/%m/%d %H:%M").replace(
            tzinfo=UTC
        )
        found = sorted(
            (
                issue
                for issue in self.issues.values()
                if datetime.fromisoformat(issue["fields"]["updated"]) >= since
                and (
                    project is None
                    or str(issue["key"]).split("-")[0] == _unescape(project)
                )
            ),
            key=_issue_order,
        )
        limit = int(call.param("maxResults") or 50)
        if token_paged:
            token = call.param("nextPageToken") or "page-0"
            start = int(token.removeprefix("page-"))
        else:
            start = int(call.param("startAt") or 0)
        page = found[start : start + limit]
        if not token_paged:
            document = {
                "startAt": start,
                "maxResults": limit,
                "total": len(found),
                "issues": page,
            }
            return json_response(200, document)
        document = {"issues": page, "isLast": start + limit >= len(found)}
        if start + limit < len(found):
            document["nextPageToken"] = f"page-{start + limit}"
        return json_response(200, document)

    def _other(self, resource: str) -> FakeResponse:
        if resource == "field":
            return json_response(200, [{"id": "summary", "name": "Summary"}])
        if resource == "myself":
            return json_response(200, {"name": self.user, "emailAddress": self.user})
        key = resource.removeprefix("project/")
        if key in self.forbidden_projects:
            return jira_error(403, "You do not have permission to view this project.")
        if not any(
            str(issue["key"]).split("-")[0] == key for issue in self.issues.values()
        ):
            return jira_error(404, f"No project could be found with key '{key}'.")
        return json_response(200, {"key": key, "name": key})

    def _comments(self, issue: dict[str, Any], call: RecordedCall) -> FakeResponse:
        comments = self.comments.setdefault(str(issue["id"]), [])
        if call.method == "GET":
            return json_response(
                200,
                {
                    "startAt": 0,
                    "maxResults": 5000,
                    "total": len(comments),
                    "comments": comments,
                },
            )
        body = json.loads(call.body)
        comment = {
            "id": str(10000 + len(comments)),
            "body": body["body"],
            "properties": body.get("properties", []),
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        }
        comments.append(comment)
        return json_response(201, comment)
