"""A fake Slack Web API, plus the `response_url` endpoint Slack gives each request.

Web API methods are served under `/api/<method>` and respond as Slack does: HTTP
200 with `{"ok": false, "error": ...}` for an application error. Replies that the
app posts to a `response_url` (`/response/<id>`) are recorded too.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any
from urllib.parse import parse_qs

from router.sandbox.server import FakeResponse, FakeServer, RecordedCall, json_response

CHANNEL_IDS = {"#opsroute-escalations": "C0ESCALATE", "#opsroute-review": "C0REVIEW"}


def call_arguments(call: RecordedCall) -> dict[str, Any]:
    """Return a Web API call's arguments, from its query, form or JSON body."""
    arguments: dict[str, Any] = {name: values[0] for name, values in call.query.items()}
    content_type = call.headers.get("content-type", "")
    if call.body and "json" in content_type:
        arguments.update(json.loads(call.body))
    elif call.body:
        form = parse_qs(call.body.decode(), keep_blank_values=True)
        arguments.update({name: values[0] for name, values in form.items()})
    return arguments


def direct_message_id(user_id: str) -> str:
    """Return the id of the app's direct message with a user, as this fake makes it."""
    return f"D{user_id}"


class FakeSlack(FakeServer):
    """The Web API methods the Slack app calls, with users and user groups to seed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._ts = itertools.count(1)
        self._messages_lock = threading.Lock()

    # Seeding and reading state

    def add_user(self, user_id: str, *, name: str, email: str | None = None) -> None:
        """Add a user that users.info and users.lookupByEmail return."""
        self.users[user_id] = {
            "id": user_id,
            "name": name.lower().replace(" ", "."),
            "profile": {"real_name": name, "email": email},
        }

    def method_calls(self, method: str) -> list[dict[str, Any]]:
        """Return the arguments of each call of a Web API method, oldest first."""
        return [
            call_arguments(call) for call in self.calls_to("POST", f"/api/{method}")
        ] + [call_arguments(call) for call in self.calls_to("GET", f"/api/{method}")]

    def replies(self) -> list[dict[str, Any]]:
        """Return the JSON bodies posted to response URLs, oldest first."""
        return [call.json() for call in self.calls_to("POST", "/response/")]

    def response_url(self, name: str = "1") -> str:
        """Return a response URL that this fake records."""
        return f"{self.url}/response/{name}"

    # Request handling

    def handle(self, call: RecordedCall) -> FakeResponse:
        if call.path.startswith("/response/"):
            return FakeResponse(200, b"ok", {"Content-Type": "text/plain"})
        if not call.path.startswith("/api/"):
            return json_response(404, {"ok": False, "error": "unknown_path"})
        method = call.path.removeprefix("/api/")
        arguments = call_arguments(call)
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return json_response(200, {"ok": False, "error": "unknown_method"})
        document: dict[str, Any] = handler(arguments)
        return json_response(200, document)

    def _chat_postMessage(self, arguments: dict[str, Any]) -> dict[str, Any]:
        channel = str(arguments.get("channel", ""))
        if channel.startswith("#") and channel not in CHANNEL_IDS:
            return {"ok": False, "error": "channel_not_found"}
        channel_id = CHANNEL_IDS.get(channel, channel)
        if channel_id[:1] in ("U", "W"):
            # Slack posts to a user id in the app's direct message with that user.
            channel_id = direct_message_id(channel_id)
        ts = f"1700000000.{next(self._ts):06d}"
        with self._messages_lock:
            self.messages[(channel_id, ts)] = arguments
        return {"ok": True, "channel": channel_id, "ts": ts, "message": arguments}

    def _chat_update(self, arguments: dict[str, Any]) -> dict[str, Any]:
        key = (str(arguments.get("channel")), str(arguments.get("ts")))
        with self._messages_lock:
            if key not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            self.messages[key] = arguments
        return {"ok": True, "channel": key[0], "ts": key[1]}

    def _chat_postEphemeral(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}

    def _conversations_history(self, arguments: dict[str, Any]) -> dict[str, Any]:
        channel = str(arguments.get("channel", ""))
        if channel.startswith("#"):
            return {"ok": False, "error": "channel_not_found"}
        with_metadata = arguments.get("include_all_metadata") in ("1", "true", True)
        limit = int(arguments.get("limit") or 100)
        with self._messages_lock:
            posted = [
                (ts, message)
                for (channel_id, ts), message in self.messages.items()
                if channel_id == channel
            ]
        history = []
        # Slack returns the newest messages first.
        for ts, message in sorted(posted, key=lambda item: item[0], reverse=True):
            entry = {"type": "message", "ts": ts, "text": message.get("text", "")}
            if with_metadata and message.get("metadata"):
                entry["metadata"] = message["metadata"]
            history.append(entry)
        return {"ok": True, "messages": history[:limit], "has_more": False}

    def _conversations_list(self, arguments: dict[str, Any]) -> dict[str, Any]:
        channels = [
            {"id": channel_id, "name": name.removeprefix("#")}
            for name, channel_id in CHANNEL_IDS.items()
        ]
        return {"ok": True, "channels": channels, "response_metadata": {}}

    def _conversations_open(self, arguments: dict[str, Any]) -> dict[str, Any]:
        user = str(arguments.get("users", ""))
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "channel": {"id": direct_message_id(user)}}

    def _users_info(self, arguments: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(arguments.get("user")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _users_lookupByEmail(self, arguments: dict[str, Any]) -> dict[str, Any]:
        for user in self.users.values():
            if user["profile"].get("email") == arguments.get("email"):
                return {"ok": True, "user": user}
        return {"ok": False, "error": "users_not_found"}

    def _usergroups_users_list(self, arguments: dict[str, Any]) -> dict[str, Any]:
        members = self.usergroups.get(str(arguments.get("usergroup")))
        if members is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": members}

    def _auth_test(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "user_id": "U0BOT", "team_id": "T0TEAM", "bot_id": "B0BOT"}

    def _apps_connections_open(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return {"ok": False, "error": "not_allowed_token_type"}
