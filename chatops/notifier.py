"""The `slack` notifier: deliver `notification` outbox actions as Slack messages.

The first notification of a ticket posts a message and stores its channel and ts.
Later ones update that message in place with `chat.update`, such as a new level,
or a reassignment or resolution that the ITSM tool reported.

The payload follows the outbox contract: `notification_type`, `target`, `reason`,
`ticket_key`, `title`, `priority`, `resolver_group`, `confidence`, `candidates`,
`context`, `escalation` and `link`. The optional `escalation.status` and
`escalation.acknowledged_by` are shown when the sender includes them. An `info`
notification with a `change` (`group`, `state`, `resolved`, `changed_by`), which
the worker queues for a ticket update in the ITSM tool, updates every message
of its ticket and never posts one.
"""

from __future__ import annotations

import logging
import urllib.error
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from chatops.messages import Blocks, escalation_message, review_message
from chatops.permissions import RoleMap, load_role_map
from chatops.posted import find_posted, marker_metadata
from chatops.settings import SlackSettings
from chatops.store import SlackMessage, find_message, messages_of_ticket, save_message
from router.intake.plugin import (
    DEFAULT_INSTANCE,
    DeliveryAction,
    DeliveryResult,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from router.mapping import MappingSet, load_mappings
from router.settings import CoreSettings
from router.store.db import make_engine
from router.store.db import session_factory as make_session_factory

logger = logging.getLogger(__name__)

# Slack errors that go away on their own; every other error is permanent.
RETRYABLE_ERRORS = frozenset(
    {
        "ratelimited",
        "service_unavailable",
        "fatal_error",
        "internal_error",
        "request_timeout",
    }
)


def render_message(
    message_kind: str,
    payload: dict[str, Any],
    state: dict[str, Any],
    *,
    groups: Sequence[str],
    role_map: RoleMap,
    now: datetime,
) -> tuple[str, Blocks]:
    """Render a ticket message for a channel, showing what a viewer may see."""
    # Everyone in the channel reads the message, so it shows the viewer's fields.
    visible = role_map.visible_fields(min(role_map.context_fields, default=None))
    if message_kind == "review":
        return review_message(payload, state, groups=groups, visible_fields=visible)
    return escalation_message(
        payload, state, groups=groups, visible_fields=visible, now=now
    )


def message_kind(payload: dict[str, Any]) -> str:
    """Return "review" for review notifications, else "escalation"."""
    return "review" if payload.get("notification_type") == "review" else "escalation"


class SlackNotifier:
    """Post and update ticket messages through the Slack Web API."""

    system = "slack"

    def __init__(
        self,
        *,
        settings: SlackSettings,
        session_factory: sessionmaker[Session],
        groups: Sequence[str],
        role_map: RoleMap,
        instance: str = DEFAULT_INSTANCE,
        client: WebClient | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.instance = instance
        self.settings = settings
        self._session_factory = session_factory
        self._groups = list(groups)
        self._role_map = role_map
        token = settings.bot_token.get_secret_value() if settings.bot_token else None
        self._client = client or WebClient(token=token, base_url=settings.api_base_url)
        self._clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        api_url = self.settings.api_url
        return f"SlackNotifier(instance={self.instance!r}, api_url={api_url!r})"

    def webhook_secret_setting(self) -> str | None:
        """Return None: notifiers receive no webhooks."""
        return None

    def missing_settings(self) -> list[str]:
        """Return the names of unset settings that posting needs."""
        return [] if self.settings.bot_token else ["OPSROUTE_SLACK_BOT_TOKEN"]

    def can_write(self) -> bool:
        """Return whether the bot token is set."""
        return self.settings.bot_token is not None

    def deliver(self, action: DeliveryAction) -> DeliveryResult:
        """Post the notification, or update the ticket's message if there is one.

        Raises:
            RetryableDeliveryError: Slack is rate limiting, down or unreachable.
            PermanentDeliveryError: the channel or user is not found, the token is
                invalid, or the payload has no target.
        """
        payload = dict(action.payload)
        ticket_key = payload.get("ticket_key")
        now = self._clock()
        if not ticket_key:
            channel = self._channel(payload)
            found = None
            if not action.first_attempt:
                found = find_posted(
                    self._client, self._call, channel=channel, marker=action.marker
                )
            if found is not None:
                return DeliveryResult(marker_found=True, details={"channel": found[0]})
            response = self._call(
                "chat.postMessage",
                self._client.chat_postMessage,
                channel=channel,
                text=_plain_text(payload),
                metadata=marker_metadata(action.marker, None),
            )
            return DeliveryResult(
                marker_found=False, details={"channel": response["channel"]}
            )

        if payload.get("notification_type") == "info" and payload.get("change"):
            return self._update_ticket(ticket_key, payload, now=now)
        kind = message_kind(payload)
        with self._session_factory() as session:
            existing = find_message(session, ticket_key=ticket_key, kind=kind)
        if existing is not None:
            return self._update(existing, payload, now=now)
        return self._post(
            ticket_key,
            kind,
            payload,
            marker=action.marker,
            first_attempt=action.first_attempt,
            now=now,
        )

    def _update_ticket(
        self, ticket_key: str, payload: dict[str, Any], *, now: datetime
    ) -> DeliveryResult:
        # A ticket change from the ITSM tool updates every message of the ticket
        # and posts none, so such a change never adds a message.
        with self._session_factory() as session:
            messages = messages_of_ticket(session, ticket_key=ticket_key)
        if not messages:
            logger.info("No Slack message of %s to update; nothing posted", ticket_key)
            return DeliveryResult(marker_found=False, details={"updated": 0})
        escalation = payload.get("escalation")
        for message in messages:
            changes = {"escalation": escalation} if escalation else {}
            self._update(message, changes, now=now, state=info_state(message, payload))
        return DeliveryResult(
            marker_found=False,
            details={"updated": len(messages), "ts": [item.ts for item in messages]},
        )

    def _post(
        self,
        ticket_key: str,
        kind: str,
        payload: dict[str, Any],
        *,
        marker: str,
        first_attempt: bool,
        now: datetime,
    ) -> DeliveryResult:
        state = _state_from(payload)
        state["marker"] = marker
        channel = self._channel(payload)
        # A crash after an earlier attempt's post left the message without a
        # stored ts, so a retry looks for its marker in the channel first.
        found = None
        if not first_attempt:
            found = find_posted(
                self._client, self._call, channel=channel, marker=marker
            )
        if found is not None:
            channel_id, ts = found
            logger.info(
                "Found the %s message of %s that an earlier attempt posted to %s",
                kind,
                ticket_key,
                channel_id,
            )
        else:
            text, blocks = render_message(
                kind,
                payload,
                state,
                groups=self._groups,
                role_map=self._role_map,
                now=now,
            )
            response = self._call(
                "chat.postMessage",
                self._client.chat_postMessage,
                channel=channel,
                text=text,
                blocks=blocks,
                metadata=marker_metadata(marker, ticket_key),
            )
            channel_id, ts = str(response["channel"]), str(response["ts"])
            logger.info("Posted %s message of %s to %s", kind, ticket_key, channel_id)
        with self._session_factory.begin() as session:
            save_message(
                session,
                ticket_key=ticket_key,
                kind=kind,
                channel=channel_id,
                ts=ts,
                payload=payload,
                state=state,
                now=now,
            )
        return DeliveryResult(
            marker_found=found is not None,
            details={"channel": channel_id, "ts": ts},
        )

    def _update(
        self,
        existing: SlackMessage,
        payload: dict[str, Any],
        *,
        now: datetime,
        state: dict[str, Any] | None = None,
    ) -> DeliveryResult:
        merged = {**existing.payload}
        merged.update(
            {key: value for key, value in payload.items() if value is not None}
        )
        if state is None:
            state = {**existing.state, **_state_from(payload)}
        text, blocks = render_message(
            existing.kind,
            merged,
            state,
            groups=self._groups,
            role_map=self._role_map,
            now=now,
        )
        self._call(
            "chat.update",
            self._client.chat_update,
            channel=existing.channel,
            ts=existing.ts,
            text=text,
            blocks=blocks,
        )
        with self._session_factory.begin() as session:
            save_message(
                session,
                ticket_key=existing.ticket_key,
                kind=existing.kind,
                channel=existing.channel,
                ts=existing.ts,
                payload=merged,
                state=state,
                now=now,
            )
        return DeliveryResult(
            marker_found=False,
            details={"channel": existing.channel, "ts": existing.ts, "updated": True},
        )

    def _channel(self, payload: dict[str, Any]) -> str:
        target = str(payload.get("target") or "")
        scheme, _, name = target.partition(":")
        if scheme == "channel" and name:
            return name
        if scheme in ("user", "account_manager") and name:
            response = self._call(
                "users.lookupByEmail", self._client.users_lookupByEmail, email=name
            )
            # Posting to a user id sends a direct message from the app.
            return str(response["user"]["id"])
        if scheme == "group" and name:
            if payload.get("notification_type") == "review":
                return self.settings.review_channel
            return self.settings.escalation_channel
        raise PermanentDeliveryError(
            f"Notification target {target[:80]!r} is invalid; use channel:#name, "
            "user:<email>, group:<name> or account_manager:<email>."
        )

    def _call(self, method: str, function: Callable[..., Any], **arguments: Any) -> Any:
        try:
            return function(**arguments)
        except SlackApiError as error:
            code = str(error.response.get("error") or "unknown_error")
            status = error.response.status_code
            if code in RETRYABLE_ERRORS or status == 429 or status >= 500:
                retry_after = error.response.headers.get("Retry-After")
                raise RetryableDeliveryError(
                    f"Slack {method} failed with {status} {code}; retrying.",
                    retry_after=float(retry_after) if retry_after else None,
                ) from None
            raise PermanentDeliveryError(
                f"Slack {method} failed with {code}; check the channel or user, and "
                "that the app is in the channel and has the scopes of its manifest."
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise RetryableDeliveryError(
                f"Slack {method} could not be reached at {self.settings.api_url}: "
                f"{error}"
            ) from None


def _state_from(payload: dict[str, Any]) -> dict[str, Any]:
    escalation = payload.get("escalation") or {}
    state: dict[str, Any] = {}
    if escalation.get("status"):
        state["status"] = escalation["status"]
    if escalation.get("acknowledged_by"):
        state["acknowledged_by"] = escalation["acknowledged_by"]
    if payload.get("notification_type") == "info" and payload.get("resolver_group"):
        state["group"] = payload["resolver_group"]
    return state


def info_state(message: SlackMessage, payload: dict[str, Any]) -> dict[str, Any]:
    """Return a message's state after an `info` notification.

    The payload's `change` (from a ticket update in its own system) sets the
    group and the ticket's state. A resolved ticket shows as resolved, and one
    reopened after that gets its buttons back.
    """
    shown_group = message.state.get("group") or message.payload.get("resolver_group")
    state = {**message.state, **_state_from(payload)}
    change = payload.get("change") or {}
    if change.get("group") and change["group"] != shown_group:
        state["group"] = change["group"]
        state["reassigned_by"] = change.get("changed_by") or "the ITSM tool"
    if change.get("state"):
        state["ticket_state"] = change["state"]
        if change.get("resolved"):
            # A message already resolved in Slack, such as a finished review, stays
            # resolved when the ticket reopens.
            if state.get("status") != "resolved":
                state["resolved_in_itsm"] = True
            state["status"] = "resolved"
        elif state.pop("resolved_in_itsm", False):
            state.pop("status", None)
    return state


def _plain_text(payload: dict[str, Any]) -> str:
    title = payload.get("title") or payload.get("notification_type") or "opsroute"
    reason = payload.get("reason")
    return f"{title}: {reason}" if reason else str(title)


def create_notifier(
    *,
    instance: str = DEFAULT_INSTANCE,
    mappings: MappingSet | None = None,
    session_factory: sessionmaker[Session] | None = None,
    settings: SlackSettings | None = None,
) -> SlackNotifier:
    """Build the notifier from `OPSROUTE_SLACK_*` settings (entry point `slack`).

    Without `session_factory` it opens the store at `OPSROUTE_DATABASE_URL`.
    """
    settings = settings or SlackSettings()
    core = CoreSettings()
    if mappings is None:
        mappings = load_mappings(core.mappings_dir)
    if session_factory is None:
        session_factory = make_session_factory(make_engine(core.database_url))
    return SlackNotifier(
        settings=settings,
        session_factory=session_factory,
        groups=mappings.taxonomy.group_names,
        role_map=load_role_map(settings.roles_file),
        instance=instance,
    )
