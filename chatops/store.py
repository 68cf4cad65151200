"""Slack messages per ticket and the keys of handled Slack requests.

Like the router's store, these functions run in the caller's transaction and never
commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from router.store.db import dialect_insert
from router.store.models import slack_messages, slack_requests

MAX_KEY_CHARS = 400
# Keys older than this are deleted when a new key is claimed.
REQUEST_KEY_RETENTION = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """The Slack message of a ticket and what it was last rendered from."""

    id: int
    ticket_key: str
    kind: str
    channel: str
    ts: str
    payload: dict[str, Any]
    state: dict[str, Any]
    posted_at: datetime
    updated_at: datetime


def claim_request(
    session: Session, *, key: str, now: datetime, window_seconds: float | None
) -> bool:
    """Record a Slack request key and return whether the request is new.

    A key seen before is a repeat while it is younger than `window_seconds`
    (None: for as long as it is kept). An older key is claimed again, so the same
    command run a minute later acts again. The compare-and-set on `seen_at` lets
    only one of two concurrent claims win.
    """
    key = key[:MAX_KEY_CHARS]
    session.execute(
        delete(slack_requests).where(
            slack_requests.c.seen_at < now - REQUEST_KEY_RETENTION
        )
    )
    inserted = session.execute(
        dialect_insert(session, slack_requests)
        .on_conflict_do_nothing(index_elements=[slack_requests.c.key])
        .returning(slack_requests.c.key),
        {"key": key, "seen_at": now},
    ).first()
    if inserted is not None:
        return True
    if window_seconds is None:
        return False
    seen_at = session.execute(
        select(slack_requests.c.seen_at).where(slack_requests.c.key == key)
    ).scalar_one_or_none()
    if seen_at is None or now - seen_at < timedelta(seconds=window_seconds):
        return False
    renewed = session.execute(
        update(slack_requests)
        .where(slack_requests.c.key == key, slack_requests.c.seen_at == seen_at)
        .values(seen_at=now)
        .returning(slack_requests.c.key)
    ).first()
    return renewed is not None


def find_message(
    session: Session, *, ticket_key: str, kind: str
) -> SlackMessage | None:
    """Return the ticket's message of this kind, or None if none was posted."""
    row = session.execute(
        select(slack_messages).where(
            slack_messages.c.ticket_key == ticket_key, slack_messages.c.kind == kind
        )
    ).first()
    return SlackMessage(**row._mapping) if row is not None else None


def messages_of_ticket(session: Session, *, ticket_key: str) -> list[SlackMessage]:
    """Return every message posted for the ticket, oldest first."""
    rows = session.execute(
        select(slack_messages)
        .where(slack_messages.c.ticket_key == ticket_key)
        .order_by(slack_messages.c.id)
    ).all()
    return [SlackMessage(**row._mapping) for row in rows]


def save_message(
    session: Session,
    *,
    ticket_key: str,
    kind: str,
    channel: str,
    ts: str,
    payload: dict[str, Any],
    state: dict[str, Any],
    now: datetime,
) -> None:
    """Store the ticket's message of this kind, replacing the one stored before."""
    insert = dialect_insert(session, slack_messages)
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[slack_messages.c.ticket_key, slack_messages.c.kind],
            set_={
                "channel": insert.excluded.channel,
                "ts": insert.excluded.ts,
                "payload": insert.excluded.payload,
                "state": insert.excluded.state,
                "updated_at": insert.excluded.updated_at,
            },
        ),
        {
            "ticket_key": ticket_key,
            "kind": kind,
            "channel": channel,
            "ts": ts,
            "payload": payload,
            "state": state,
            "posted_at": now,
            "updated_at": now,
        },
    )


def update_message_state(
    session: Session, *, ticket_key: str, changes: dict[str, Any], now: datetime
) -> list[SlackMessage]:
    """Merge `changes` into the state of each of the ticket's messages.

    Returns:
        The updated messages, for the caller to render again.
    """
    updated = []
    for message in messages_of_ticket(session, ticket_key=ticket_key):
        state = {**message.state, **changes}
        session.execute(
            update(slack_messages)
            .where(slack_messages.c.id == message.id)
            .values(state=state, updated_at=now)
        )
        updated.append(
            SlackMessage(
                **{
                    **_fields(message),
                    "state": state,
                    "updated_at": now,
                }
            )
        )
    return updated


def _fields(message: SlackMessage) -> dict[str, Any]:
    return {name: getattr(message, name) for name in SlackMessage.__slots__}
