"""A fake Jira REST API v2: issues, their updates and their comments.

It implements `GET` and `PUT /rest/api/2/issue/<id or key>`, `GET` and `POST
/rest/api/2/issue/<id or key>/comment`, and `POST /rest/api/2/issue` (which adds a
created sub-task to its parent's `subtasks`), with Basic authentication. Each issue's
`self` URL is built from the request's Host header, as the jira client sends
updates to that URL.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from fakes.server import FakeResponse, FakeServer, RecordedCall, json_response

_ISSUE_PATH = re.compile(r"^/rest/api/(?:2|latest)/issue/([^/]+)(/comment)?$")
_CREATE_PATH = re.compile(r"^/rest/api/(?:2|latest)/issue/?$")


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
        match = _ISSUE_PATH.match(call.path)
        if match is None:
            return jira_error(404, f"No endpoint {call.path}")
        issue = self._find(match.group(1))
        if issue is None:
            return jira_error(
                404, "Issue does not exist or you do not have permission."
            )
        host = call.headers.get("host", "127.0.0.1")
        if match.group(2):
            return self._comments(issue, call)
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
        return FakeResponse(204)

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
