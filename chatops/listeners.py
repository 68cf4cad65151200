"""Bolt listeners: acknowledge first, then act in a lazy listener.

Every listener is split in two. The ack function runs before Slack's three-second
deadline and touches neither the database nor an ITSM system: it only parses the
command text, and replies to `help` and to invalid input in the
acknowledgement itself. The lazy function runs
on Bolt's thread pool after the acknowledgement. It checks the role, claims the
request key so that a repeat acts once, does the work in one transaction, replies
through `response_url` and updates the ticket's messages.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from chatops import operations, queries
from chatops.commands import Command, CommandError, help_text, parse_command
from chatops.escalations import EscalationEngineMissingError
from chatops.messages import (
    ACTION_ACK,
    ACTION_ESCALATE,
    ACTION_REASSIGN,
    ACTION_REVIEW_APPROVE,
    ACTION_REVIEW_PICK,
    ACTION_WHY,
    parse_choice_value,
)
from chatops.notifier import render_message
from chatops.people import PeopleDirectory
from chatops.permissions import PermissionDeniedError, Role, RoleResolver
from chatops.settings import SlackSettings
from chatops.store import SlackMessage, claim_request, update_message_state

logger = logging.getLogger(__name__)

MENTION = re.compile(r"<@[A-Z0-9]+>")
# Subcommands an @mention may run; they reply in the thread, where everyone reads.
MENTION_COMMANDS = frozenset({"why", "status", "queue", "help"})
DATABASE_ERROR_REPLY = (
    "opsroute could not reach its database, so nothing changed; try again in a minute."
)


@dataclass(frozen=True)
class Work:
    """One request to act on: the command, the role it needs and its repeat key."""

    command: Command
    role: Role | None
    key: str
    # Seconds within which the same key is a repeat; None: always a repeat.
    window_seconds: float | None
    user_id: str
    user_name: str | None = None
    # Reply sent for a repeat; None sends nothing (a double click).
    repeat_reply: str | None = None


class Listeners:
    """The listeners of the Bolt app and the parts they share."""

    def __init__(
        self,
        *,
        settings: SlackSettings,
        session_factory: sessionmaker[Session],
        groups: Sequence[str],
        roles: RoleResolver,
        people: PeopleDirectory,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.groups = list(groups)
        self.roles = roles
        self.people = people
        self.clock = clock

    # Slash command

    def ack_command(self, ack: Ack, command: dict[str, Any]) -> None:
        """Reply to help and invalid input in the acknowledgement, else ack empty."""
        try:
            parsed = parse_command(command.get("text") or "")
        except CommandError as error:
            ack(response_type="ephemeral", text=help_text(str(error)))
            return
        if parsed.name == "help":
            ack(response_type="ephemeral", text=help_text())
            return
        ack()

    def run_command(
        self, command: dict[str, Any], respond: Respond, client: WebClient
    ) -> None:
        """Run a slash command after its acknowledgement."""
        text = " ".join((command.get("text") or "").split())
        try:
            parsed = parse_command(text)
        except CommandError:
            return
        if parsed.name == "help":
            return
        user_id = str(command["user_id"])
        work = Work(
            command=parsed,
            role=parsed.role,
            key=(
                f"command:{command.get('team_id')}:{user_id}:"
                f"{command.get('channel_id')}:{text.lower()}"
            ),
            window_seconds=self.settings.repeat_window_seconds,
            user_id=user_id,
            user_name=command.get("user_name"),
            repeat_reply=(
                f"`/opsroute {text}` ran less than "
                f"{self.settings.repeat_window_seconds:g} s ago, so it was not run "
                "again."
            ),
        )
        self.perform(work, respond=respond, client=client)

    # Buttons and selects

    def ack_action(self, ack: Ack) -> None:
        """Acknowledge a click at once; the lazy listener does the work."""
        ack()

    def run_action(
        self,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Respond,
        client: WebClient,
    ) -> None:
        """Run a button click or a select choice after its acknowledgement."""
        action_id = str(action.get("action_id"))
        value = str(
            action.get("value")
            or (action.get("selected_option") or {}).get("value")
            or ""
        )
        try:
            command, role = _action_command(action_id, value)
        except ValueError as error:
            logger.warning("Ignored Slack action %s: %s", action_id, error)
            return
        user = body.get("user") or {}
        message_ts = (body.get("container") or {}).get("message_ts", "")
        work = Work(
            command=command,
            role=role,
            key=f"action:{user.get('id')}:{message_ts}:{action_id}:{value}",
            window_seconds=self.settings.repeat_window_seconds,
            user_id=str(user.get("id")),
            user_name=user.get("username") or user.get("name"),
        )
        self.perform(work, respond=respond, client=client)

    # Events API

    def ack_event(self, ack: Ack) -> None:
        """Acknowledge an event at once; retries of it are dropped by event id."""
        ack()

    def run_mention(
        self, body: dict[str, Any], event: dict[str, Any], client: WebClient
    ) -> None:
        """Reply in the thread to an @mention that names a read-only subcommand."""
        text = " ".join(MENTION.sub(" ", event.get("text") or "").split())
        channel = str(event.get("channel"))
        thread_ts = event.get("thread_ts") or event.get("ts")

        def reply(text: str, **_: Any) -> None:
            # Called like Bolt's `respond`, so the keyword stays `text`.
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)

        problem: str | None = None
        try:
            parsed = parse_command(text)
        except CommandError as error:
            parsed, problem = Command("help"), str(error)
        if parsed.name not in MENTION_COMMANDS:
            parsed, problem = Command("help"), "Use `/opsroute` to change tickets."
        work = Work(
            command=parsed,
            # Everyone in the channel reads the reply, so it shows a viewer's view.
            role=Role.VIEWER if parsed.name != "help" else None,
            key=f"event:{body.get('event_id')}",
            window_seconds=None,
            user_id=str(event.get("user")),
        )
        if parsed.name == "help":
            if self._claim_only(work.key):
                reply(help_text(problem))
            return
        self.perform(work, respond=reply, client=client)

    # Shared steps

    def perform(
        self, work: Work, *, respond: Callable[..., Any], client: WebClient
    ) -> None:
        """Check the role, act once per key, reply and update the messages."""
        command = work.command
        try:
            role = self.roles.require(work.user_id, work.role) if work.role else None
        except PermissionDeniedError as error:
            logger.info(
                "Refused %s on %s to %s: needs %s",
                command.name,
                command.ticket,
                work.user_id,
                error.needed.label,
            )
            _reply(respond, str(error))
            return
        person = self.people.person(work.user_id, fallback_name=work.user_name)
        now = self.clock()

        messages: list[SlackMessage] = []
        try:
            with self.session_factory.begin() as session:
                if not claim_request(
                    session, key=work.key, now=now, window_seconds=work.window_seconds
                ):
                    outcome = None
                else:
                    outcome = self._run(
                        session, command, person=person, role=role, now=now
                    )
                    if outcome.ticket_key and outcome.state_changes:
                        messages = update_message_state(
                            session,
                            ticket_key=outcome.ticket_key,
                            changes=outcome.state_changes,
                            now=now,
                        )
        except (LookupError, ValueError, EscalationEngineMissingError) as error:
            logger.info(
                "Slack %s on %s by %s failed: %s",
                command.name,
                command.ticket,
                work.user_id,
                error,
            )
            _reply(respond, str(error))
            return
        except SQLAlchemyError:
            logger.exception(
                "Slack %s on %s failed in the store", command.name, command.ticket
            )
            _reply(respond, DATABASE_ERROR_REPLY)
            return

        if outcome is None:
            logger.info("Ignored repeated Slack request %s", work.key)
            if work.repeat_reply:
                _reply(respond, work.repeat_reply)
            return
        _reply(respond, outcome.reply)
        for message in messages:
            self.refresh_message(client, message)

    def refresh_message(self, client: WebClient, message: SlackMessage) -> None:
        """Render the message again from its stored payload and state."""
        text, blocks = render_message(
            message.kind,
            message.payload,
            message.state,
            groups=self.groups,
            role_map=self.roles.role_map,
            now=self.clock(),
        )
        try:
            client.chat_update(
                channel=message.channel, ts=message.ts, text=text, blocks=blocks
            )
        except SlackApiError as error:
            logger.warning(
                "Cannot update the Slack message of %s in %s: %s",
                message.ticket_key,
                message.channel,
                error.response.get("error"),
            )

    def _run(
        self,
        session: Session,
        command: Command,
        *,
        person: Any,
        role: Role | None,
        now: datetime,
    ) -> operations.Outcome:
        ticket = command.ticket or ""
        if command.name == "ack":
            return operations.acknowledge(session, ref=ticket, person=person, now=now)
        if command.name == "assign":
            return operations.reassign(
                session,
                ref=ticket,
                group=command.group or "",
                person=person,
                groups=self.groups,
            )
        if command.name == "review":
            return operations.choose_review_group(
                session,
                ref=ticket,
                group=command.group or "",
                person=person,
                groups=self.groups,
            )
        if command.name == "escalate":
            return operations.escalate(
                session, ref=ticket, person=person, reason=command.reason, now=now
            )
        if command.name == "why":
            visible = self.roles.role_map.visible_fields(role)
            return operations.Outcome(
                queries.explain(session, ref=ticket, visible_fields=visible)
            )
        if command.name == "status":
            return operations.Outcome(queries.status(session, ref=command.ticket))
        if command.name == "queue":
            return operations.Outcome(queries.queue(session))
        raise ValueError(f"Command {command.name!r} is not handled.")

    def _claim_only(self, key: str) -> bool:
        with self.session_factory.begin() as session:
            return claim_request(
                session, key=key, now=self.clock(), window_seconds=None
            )


def _action_command(action_id: str, value: str) -> tuple[Command, Role]:
    if action_id == ACTION_ACK:
        return Command("ack", ticket=value), Role.RESPONDER
    if action_id == ACTION_ESCALATE:
        return Command("escalate", ticket=value), Role.RESPONDER
    if action_id == ACTION_WHY:
        return Command("why", ticket=value), Role.VIEWER
    if action_id == ACTION_REASSIGN:
        ticket, group = parse_choice_value(value)
        return Command("assign", ticket=ticket, group=group), Role.RESPONDER
    if action_id in (ACTION_REVIEW_APPROVE, ACTION_REVIEW_PICK):
        ticket, group = parse_choice_value(value)
        return Command("review", ticket=ticket, group=group), Role.REVIEWER
    raise ValueError(f"action id {action_id!r} is unknown")


def _reply(respond: Callable[..., Any], text: str) -> None:
    try:
        respond(text=text, response_type="ephemeral", replace_original=False)
    except (SlackApiError, OSError) as error:
        logger.warning("Cannot send the Slack reply: %s", error)
