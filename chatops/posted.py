"""Find the Slack message that an earlier delivery attempt posted, by its marker.

Each message the notifier posts carries its outbox action's marker in the message
metadata (event type `opsroute_notification`). A retried delivery searches the
channel's latest messages for that marker before it posts, so a crash between the
post and the commit that stores the message's ts does not post it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient

from router.intake.plugin import PermanentDeliveryError

logger = logging.getLogger(__name__)

MARKER_EVENT_TYPE = "opsroute_notification"
# Latest messages of the channel searched for the marker (one history page).
HISTORY_LIMIT = 200
CHANNEL_PAGE_SIZE = 200
# conversations.list pages read to find a channel by name, so at most 2000.
MAX_CHANNEL_PAGES = 10

# The notifier's `_call(method, function, **arguments)`, which maps Slack errors
# to delivery errors.
SlackCall = Callable[..., Any]


def marker_metadata(marker: str, ticket_key: str | None) -> dict[str, Any]:
    """Return the message metadata that carries an action's marker."""
    return {
        "event_type": MARKER_EVENT_TYPE,
        "event_payload": {"marker": marker, "ticket_key": ticket_key or ""},
    }


def find_posted(
    client: WebClient, call: SlackCall, *, channel: str, marker: str
) -> tuple[str, str] | None:
    """Return the channel id and ts of the message that carries `marker`, or None.

    `channel` is what `chat.postMessage` was given: a channel id, a `#name` or a
    user id. A search that Slack rejects, for example for a missing scope or a
    channel the app is not in, returns None, so the caller posts again.

    Raises:
        RetryableDeliveryError: Slack is rate limiting, down or unreachable.
    """
    try:
        channel_id = conversation_id(client, call, channel)
        if channel_id is None:
            logger.warning(
                "Channel %s not found by conversations.list; not searching it for "
                "marker %s",
                channel,
                marker,
            )
            return None
        response = call(
            "conversations.history",
            client.conversations_history,
            channel=channel_id,
            limit=HISTORY_LIMIT,
            include_all_metadata=True,
        )
    except PermanentDeliveryError as error:
        logger.warning(
            "Searching %s for marker %s failed, so a message that an earlier "
            "attempt posted may appear twice: %s",
            channel,
            marker,
            error,
        )
        return None
    # NOTE: Only the latest HISTORY_LIMIT messages are searched, so a post that
    # busier traffic pushed out of them is posted again.
    for message in response.get("messages") or []:
        if _marker_of(message) == marker:
            return channel_id, str(message["ts"])
    return None


def conversation_id(client: WebClient, call: SlackCall, channel: str) -> str | None:
    """Return the conversation id that conversations.history takes for `channel`.

    A `#name` is looked up with conversations.list, and a user id is turned into
    the id of the app's direct message with that user by conversations.open.
    Returns None for a name that no channel has.
    """
    if channel.startswith("#"):
        return _channel_id_by_name(client, call, channel.removeprefix("#"))
    if channel[:1] in ("U", "W"):
        response = call("conversations.open", client.conversations_open, users=channel)
        return str(response["channel"]["id"])
    return channel


def _channel_id_by_name(client: WebClient, call: SlackCall, name: str) -> str | None:
    cursor = None
    for _ in range(MAX_CHANNEL_PAGES):
        response = call(
            "conversations.list",
            client.conversations_list,
            types="public_channel,private_channel",
            exclude_archived=True,
            limit=CHANNEL_PAGE_SIZE,
            cursor=cursor,
        )
        for item in response.get("channels") or []:
            if item.get("name") == name:
                return str(item["id"])
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    return None


def _marker_of(message: dict[str, Any]) -> str | None:
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != MARKER_EVENT_TYPE:
        return None
    marker = (metadata.get("event_payload") or {}).get("marker")
    return str(marker) if marker else None
