"""Helpers for the Slack app tests: signed Slack requests, stored tickets, a server."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

import httpx
import uvicorn
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.routing import Route

from chatops.app import SlackEventsHandler
from router.schemas import (
    Candidate,
    Decision,
    DecisionAction,
    Explanation,
    GroupExplanation,
    Ticket,
)
from router.store.service import save_decisions

SIGNING_SECRET = "test-signing-secret-4b1d"
BOT_TOKEN = "xoxb-test-bot-token"
TEAM_ID = "T0TEAM"
VIEWER = "U0VIEW"
RESPONDER = "U0RESP"
REVIEWER = "U0REVIEW"
ONCALL_MEMBER = "U0ONCALL"
STRANGER = "U0NOBODY"
ONCALL_GROUP = "S0ONCALL"
ROUTED_TICKET = "INC0012345"
REVIEW_TICKET = "INC0012346"
SERVER_START_SECONDS = 10.0

ROLES_YAML = f"""
version: "1"
default_role: null
users:
  {VIEWER}: viewer
  {RESPONDER}: responder
  {REVIEWER}: reviewer
usergroups:
  {ONCALL_GROUP}: responder
context_fields:
  viewer: [account_tier]
  responder: [renewal_date]
  admin: ["*"]
"""

PEOPLE_YAML = f"""
version: "1"
people:
  {RESPONDER}:
    name: Ada Lovelace
    email: ada@example.com
    servicenow: ada.lovelace
"""


def wait_for(condition: Any, *, timeout: float = 10.0) -> bool:
    """Poll every 20 ms until `condition()` is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def write_mapping_files(directory: Path) -> tuple[Path, Path]:
    """Write a roles file and a people file for the test users; return their paths."""
    roles = directory / "roles.yaml"
    people = directory / "people.yaml"
    roles.write_text(ROLES_YAML)
    people.write_text(PEOPLE_YAML)
    return roles, people


def signed_headers(
    body: bytes,
    *,
    content_type: str,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Return the headers Slack sends: a v0 HMAC-SHA256 of `v0:<ts>:<body>`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }


def slash_command(text: str, *, user_id: str, response_url: str) -> bytes:
    """Return the form body of `/opsroute <text>` from a user."""
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "channel_id": "C0ESCALATE",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": "/opsroute",
            "text": text,
            "response_url": response_url,
            "trigger_id": f"trigger-{time.monotonic_ns()}",
        }
    ).encode()


def block_action(
    action_id: str,
    value: str,
    *,
    user_id: str,
    response_url: str,
    message_ts: str = "1700000000.000001",
    select: bool = False,
) -> bytes:
    """Return the form body of a button click, or of a select choice."""
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": "escalation",
        "action_ts": f"{time.time():.6f}",
    }
    if select:
        action |= {"type": "static_select", "selected_option": {"value": value}}
    else:
        action |= {"type": "button", "value": value}
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0APP",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": "C0ESCALATE",
        },
        "channel": {"id": "C0ESCALATE"},
        "trigger_id": f"trigger-{time.monotonic_ns()}",
        "response_url": response_url,
        "actions": [action],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def mention_event(event_id: str, text: str, *, user_id: str) -> bytes:
    """Return the JSON body of an Events API `app_mention` delivery."""
    return json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM_ID,
            "api_app_id": "A0APP",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": {
                "type": "app_mention",
                "user": user_id,
                "text": f"<@U0BOT> {text}",
                "channel": "C0ESCALATE",
                "ts": "1700000100.000100",
                "event_ts": "1700000100.000100",
            },
        }
    ).encode()


def store_tickets(session: Session) -> None:
    """Store a routed ticket (HDFS, confidence 0.93) and one waiting for review."""
    routed = Ticket(
        source_system="servicenow",
        external_id=ROUTED_TICKET,
        record_id="4f1c2e3d5a6b7c8d9e0f1a2b3c4d5e6f",
        title="NameNode out of heap",
        context={"account_tier": "gold", "renewal_date": "2027-01-15", "arr": 120000},
    )
    review = Ticket(
        source_system="servicenow",
        external_id=REVIEW_TICKET,
        record_id="5f1c2e3d5a6b7c8d9e0f1a2b3c4d5e6f",
        title="Query hangs on the warehouse",
    )
    save_decisions(
        session,
        items=[
            (routed, _decision(routed, "HDFS", 0.93, DecisionAction.AUTO_ROUTE)),
            (review, _decision(review, "HIVE", 0.41, DecisionAction.REVIEW)),
        ],
    )


def _decision(
    ticket: Ticket, group: str, confidence: float, action: DecisionAction
) -> Decision:
    runner_up = "HADOOP" if group != "HADOOP" else "HDFS"
    return Decision(
        ticket_key=ticket.key,
        resolver_group=group,
        intent="general",
        confidence=confidence,
        action=action,
        threshold=0.9,
        candidates=[
            Candidate(group=group, probability=confidence),
            Candidate(group=runner_up, probability=round(1 - confidence, 2)),
        ],
        explanation=Explanation(
            chosen=GroupExplanation(
                group=group, score=confidence, terms={"namenode": 0.5, "heap": 0.3}
            ),
            runner_up=GroupExplanation(group=runner_up, score=0.05),
        ),
        model_version="model-test",
        policy_version="policy-test",
    )


class SlackAppServer:
    """The `/slack/events` handler served by uvicorn on a free loopback port."""

    def __init__(self, handler: SlackEventsHandler) -> None:
        app = Starlette(
            routes=[Route("/slack/events", handler.handle, methods=["POST"])]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.client = httpx.Client(timeout=10.0)

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not self._server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start within 10 s")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.client.close()
        self._server.should_exit = True
        self._thread.join(SERVER_START_SECONDS)

    @property
    def url(self) -> str:
        """Return the URL of `/slack/events`."""
        (listener,) = self._server.servers[0].sockets
        port = listener.getsockname()[1]
        return f"http://127.0.0.1:{port}/slack/events"

    def post(
        self, body: bytes, *, content_type: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """Send a signed request; `headers` are added after signing."""
        sent = signed_headers(body, content_type=content_type) | (headers or {})
        return self.client.post(self.url, content=body, headers=sent)

    def command(self, text: str, *, user_id: str, response_url: str) -> httpx.Response:
        """Send `/opsroute <text>`."""
        body = slash_command(text, user_id=user_id, response_url=response_url)
        return self.post(body, content_type="application/x-www-form-urlencoded")

    def click(self, action_id: str, value: str, **kwargs: Any) -> httpx.Response:
        """Send a button click (or a select choice with `select=True`)."""
        body = block_action(action_id, value, **kwargs)
        return self.post(body, content_type="application/x-www-form-urlencoded")
