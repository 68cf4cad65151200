"""The Slack app manifest matches what the app serves and calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

import chatops
from chatops.app import COMMAND

MANIFEST = Path(chatops.__file__).parent / "manifest.yaml"
# Scopes of each Web API method the app calls, from the method's documentation.
METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "conversations.history": "channels:history",
    "conversations.list": "channels:read",
    "conversations.open": "im:write",
    "usergroups.users.list": "usergroups:read",
    "users.info": "users:read",
    "users.lookupByEmail": "users:read.email",
}


def _manifest() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return document


def test_manifest_declares_command() -> None:
    (command,) = _manifest()["features"]["slash_commands"]

    assert command["command"] == COMMAND
    assert command["url"].endswith("/slack/events")


def test_manifest_urls_point_at_events() -> None:
    settings = _manifest()["settings"]

    assert settings["event_subscriptions"]["request_url"].endswith("/slack/events")
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["event_subscriptions"]["bot_events"] == ["app_mention"]


def test_manifest_has_scopes_of_calls() -> None:
    scopes = set(_manifest()["oauth_config"]["scopes"]["bot"])

    for method, scope in METHOD_SCOPES.items():
        assert scope in scopes, method
    assert "commands" in scopes
    assert "app_mentions:read" in scopes
