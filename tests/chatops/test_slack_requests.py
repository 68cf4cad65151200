"""Slash commands, clicks and events sent to `/slack/events`, signed as Slack signs."""

from __future__ import annotations

import time

from slack_support import (
    ONCALL_MEMBER,
    RESPONDER,
    REVIEW_TICKET,
    REVIEWER,
    ROUTED_TICKET,
    STRANGER,
    VIEWER,
    SlackAppServer,
    mention_event,
    signed_headers,
    slash_command,
    wait_for,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from chatops.commands import SUBCOMMANDS
from chatops.messages import ACTION_REASSIGN, ACTION_REVIEW_APPROVE, ACTION_REVIEW_PICK
from router.sandbox.slack import FakeSlack
from router.store.models import audit_log, outbox_actions, review_items

FORM = "application/x-www-form-urlencoded"
ROUTED_KEY = f"servicenow:{ROUTED_TICKET}"
REVIEW_KEY = f"servicenow:{REVIEW_TICKET}"


def _write_backs(sessions: sessionmaker[Session]) -> list[dict[str, object]]:
    with sessions() as session:
        rows = session.execute(
            select(outbox_actions).where(outbox_actions.c.kind == "write_back")
        ).all()
    return [dict(row._mapping) for row in rows]


def _audit(sessions: sessionmaker[Session], event: str) -> list[dict[str, object]]:
    with sessions() as session:
        rows = session.execute(
            select(audit_log).where(audit_log.c.event == event)
        ).all()
    return [dict(row._mapping) for row in rows]


# Help and invalid input


def test_help_is_answered_in_the_ack(
    slack_server: SlackAppServer, fake_slack: FakeSlack
) -> None:
    response = slack_server.command(
        "help", user_id=STRANGER, response_url=fake_slack.response_url()
    )

    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    for subcommand in SUBCOMMANDS:
        assert f"/opsroute {subcommand.usage}" in body["text"]


def test_help_calls_nothing_after_ack(
    slack_server: SlackAppServer, fake_slack: FakeSlack
) -> None:
    slack_server.command("", user_id=STRANGER, response_url=fake_slack.response_url())
    time.sleep(0.3)

    assert fake_slack.calls == []


def test_unknown_input_gets_help(
    slack_server: SlackAppServer, fake_slack: FakeSlack
) -> None:
    response = slack_server.command(
        "reboot everything", user_id=STRANGER, response_url=fake_slack.response_url()
    )

    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert body["text"].startswith("`reboot` is not an opsroute command.")
    assert "/opsroute assign TICKET GROUP" in body["text"]


def test_invalid_ticket_id_gets_help(
    slack_server: SlackAppServer, fake_slack: FakeSlack
) -> None:
    response = slack_server.command(
        "why <script>", user_id=VIEWER, response_url=fake_slack.response_url()
    )

    assert "is not a ticket id such as INC0012345" in response.json()["text"]


# Signatures


def test_bad_signature_is_rejected(
    slack_server: SlackAppServer, fake_slack: FakeSlack
) -> None:
    body = slash_command(
        "queue", user_id=VIEWER, response_url=fake_slack.response_url()
    )
    headers = signed_headers(body, content_type=FORM, secret="another-secret")

    response = slack_server.client.post(slack_server.url, content=body, headers=headers)

    assert response.status_code == 401
    time.sleep(0.3)
    assert fake_slack.calls == []


def test_stale_timestamp_is_rejected(
    slack_server: SlackAppServer, fake_slack: FakeSlack
) -> None:
    body = slash_command(
        "queue", user_id=VIEWER, response_url=fake_slack.response_url()
    )
    six_minutes_ago = int(time.time()) - 6 * 60
    headers = signed_headers(body, content_type=FORM, timestamp=six_minutes_ago)

    response = slack_server.client.post(slack_server.url, content=body, headers=headers)

    assert response.status_code == 401


def test_missing_signature_is_rejected(
    slack_server: SlackAppServer, fake_slack: FakeSlack
) -> None:
    body = slash_command(
        "queue", user_id=VIEWER, response_url=fake_slack.response_url()
    )

    response = slack_server.client.post(
        slack_server.url, content=body, headers={"Content-Type": FORM}
    )

    assert response.status_code == 401


def test_no_auth_test_call_is_made(
    slack_server: SlackAppServer, fake_slack: FakeSlack
) -> None:
    slack_server.command(
        "queue", user_id=VIEWER, response_url=fake_slack.response_url()
    )
    assert wait_for(lambda: len(fake_slack.replies()) == 1)

    assert fake_slack.method_calls("auth.test") == []


# Commands


def test_assign_queues_write_back_and_override(
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    response = slack_server.command(
        f"assign {ROUTED_TICKET} hive",
        user_id=RESPONDER,
        response_url=fake_slack.response_url(),
    )

    assert response.status_code == 200
    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    reply = fake_slack.replies()[0]
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith(f"Reassigned {ROUTED_TICKET} from HDFS to HIVE")
    (action,) = _write_backs(sessions)
    assert action["ticket_key"] == ROUTED_KEY
    assert action["system"] == "servicenow"
    assert action["payload"]["group"] == "HIVE"
    assert "Ada Lovelace" in action["payload"]["reason"]
    assert action["payload"]["on_behalf_of"]["user"] == "ada.lovelace"
    (override,) = _audit(sessions, "override")
    assert override["actor"] == f"slack:{RESPONDER}"
    assert override["details"] == {
        "group": "HIVE",
        "previous_group": "HDFS",
        "source": "slack",
    }


def test_assign_to_unknown_group_changes_nothing(
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    slack_server.command(
        f"assign {ROUTED_TICKET} Printers",
        user_id=RESPONDER,
        response_url=fake_slack.response_url(),
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    assert "'Printers' is not a resolver group" in fake_slack.replies()[0]["text"]
    assert _write_backs(sessions) == []


def test_unknown_ticket_gets_clear_reply(
    slack_server: SlackAppServer, fake_slack: FakeSlack
) -> None:
    slack_server.command(
        "why PROJ-123", user_id=VIEWER, response_url=fake_slack.response_url()
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    assert fake_slack.replies()[0]["text"].startswith("Ticket 'PROJ-123' not found")


def test_repeated_command_acts_once(
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    for _ in range(2):
        slack_server.command(
            f"assign {ROUTED_TICKET} HIVE",
            user_id=RESPONDER,
            response_url=fake_slack.response_url(),
        )

    assert wait_for(lambda: len(fake_slack.replies()) == 2)
    texts = sorted(reply["text"] for reply in fake_slack.replies())
    assert any(text.startswith("Reassigned") for text in texts)
    assert any("was not run again" in text for text in texts)
    assert len(_write_backs(sessions)) == 1
    assert len(_audit(sessions, "override")) == 1


def test_why_shows_context_of_role(
    slack_server: SlackAppServer, fake_slack: FakeSlack
) -> None:
    slack_server.command(
        f"why {ROUTED_TICKET}", user_id=VIEWER, response_url=fake_slack.response_url()
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    text = fake_slack.replies()[0]["text"]
    assert f"*Why {ROUTED_TICKET} went to HDFS*" in text
    assert "confidence 0.93 (threshold 0.90)" in text
    assert "Strongest signals: namenode, heap." in text
    assert "• account_tier: gold" in text
    assert "renewal_date" not in text
    assert "arr" not in text.split("Context:")[1]


def test_why_shows_more_to_responder(
    slack_server: SlackAppServer, fake_slack: FakeSlack
) -> None:
    slack_server.command(
        f"why {ROUTED_TICKET}",
        user_id=RESPONDER,
        response_url=fake_slack.response_url(),
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    text = fake_slack.replies()[0]["text"]
    assert "• account_tier: gold" in text
    assert "• renewal_date: 2027-01-15" in text


def test_queue_lists_open_reviews(
    slack_server: SlackAppServer, fake_slack: FakeSlack
) -> None:
    slack_server.command(
        "queue", user_id=VIEWER, response_url=fake_slack.response_url()
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    text = fake_slack.replies()[0]["text"]
    assert text.startswith("*1 tickets wait for review*")
    assert (
        f"• {REVIEW_TICKET} Query hangs on the warehouse: suggested HIVE (0.41)" in text
    )


def test_status_shows_group(
    slack_server: SlackAppServer, fake_slack: FakeSlack
) -> None:
    slack_server.command(
        f"status {ROUTED_TICKET}",
        user_id=VIEWER,
        response_url=fake_slack.response_url(),
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    text = fake_slack.replies()[0]["text"]
    assert "Group: HDFS" in text
    assert "Last decision: auto_route to HDFS (confidence 0.93)" in text


# Permissions


def test_user_without_role_is_refused(
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    slack_server.command(
        f"assign {ROUTED_TICKET} HIVE",
        user_id=STRANGER,
        response_url=fake_slack.response_url(),
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    reply = fake_slack.replies()[0]
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith(
        "This needs the responder role and you have no role."
    )
    assert _write_backs(sessions) == []
    assert _audit(sessions, "override") == []


def test_viewer_cannot_reassign(
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    slack_server.click(
        ACTION_REASSIGN,
        f"{ROUTED_KEY}|HIVE",
        user_id=VIEWER,
        response_url=fake_slack.response_url(),
        select=True,
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    text = fake_slack.replies()[0]["text"]
    assert text.startswith("This needs the responder role and your role is viewer.")
    assert _write_backs(sessions) == []


def test_user_group_grants_role(
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    slack_server.command(
        f"assign {ROUTED_TICKET} HIVE",
        user_id=ONCALL_MEMBER,
        response_url=fake_slack.response_url(),
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    (action,) = _write_backs(sessions)
    # Grace has no entry in the people file, so her Slack profile names her.
    assert action["payload"]["on_behalf_of"]["email"] == "grace@example.com"
    assert "(on behalf of Grace Hopper, grace@example.com)" in action["payload"]["note"]
    assert fake_slack.method_calls("usergroups.users.list") == [
        {"usergroup": "S0ONCALL"}
    ]


# Buttons


def test_double_click_acts_once(
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    for _ in range(2):
        response = slack_server.click(
            ACTION_REASSIGN,
            f"{ROUTED_KEY}|HIVE",
            user_id=RESPONDER,
            response_url=fake_slack.response_url(),
            select=True,
        )
        assert response.status_code == 200

    assert wait_for(lambda: len(fake_slack.replies()) >= 1)
    time.sleep(0.3)
    assert len(fake_slack.replies()) == 1
    assert len(_write_backs(sessions)) == 1


def test_review_approve_resolves_item(
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    slack_server.click(
        ACTION_REVIEW_APPROVE,
        f"{REVIEW_KEY}|HIVE",
        user_id=REVIEWER,
        response_url=fake_slack.response_url(),
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    assert fake_slack.replies()[0]["text"].startswith(f"Routed {REVIEW_TICKET} to HIVE")
    with sessions() as session:
        item = session.execute(select(review_items)).one()
    assert item.status == "resolved"
    assert item.resolved_group == "HIVE"
    assert item.resolved_by == f"slack:{REVIEWER}"
    (label,) = _audit(sessions, "override")
    assert label["details"]["source"] == "slack_review"
    (action,) = _write_backs(sessions)
    assert action["payload"]["group"] == "HIVE"
    assert "approved HIVE" in action["payload"]["reason"]


def test_review_pick_records_other_group(
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    slack_server.click(
        ACTION_REVIEW_PICK,
        f"{REVIEW_KEY}|IMPALA",
        user_id=REVIEWER,
        response_url=fake_slack.response_url(),
        select=True,
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    (label,) = _audit(sessions, "override")
    assert label["details"] == {
        "group": "IMPALA",
        "previous_group": "HIVE",
        "source": "slack_review",
    }
    (resolved,) = _audit(sessions, "review_resolved")
    assert resolved["details"]["overridden"] is True


def test_responder_cannot_review(
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    slack_server.click(
        ACTION_REVIEW_APPROVE,
        f"{REVIEW_KEY}|HIVE",
        user_id=RESPONDER,
        response_url=fake_slack.response_url(),
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    assert "needs the reviewer role" in fake_slack.replies()[0]["text"]
    with sessions() as session:
        assert session.execute(select(review_items.c.status)).scalar_one() == "open"


def test_second_review_choice_is_refused(
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    for message_ts, group in (("1.1", "HIVE"), ("1.2", "IMPALA")):
        slack_server.click(
            ACTION_REVIEW_PICK,
            f"{REVIEW_KEY}|{group}",
            user_id=REVIEWER,
            response_url=fake_slack.response_url(),
            message_ts=message_ts,
            select=True,
        )
        assert wait_for(lambda: len(fake_slack.replies()) >= 1)

    assert wait_for(lambda: len(fake_slack.replies()) == 2)
    assert "has no open review item" in fake_slack.replies()[1]["text"]
    assert len(_write_backs(sessions)) == 1


# Events API


def test_event_retry_is_answered_once(
    slack_server: SlackAppServer, fake_slack: FakeSlack
) -> None:
    body = mention_event("Ev0001", f"status {ROUTED_TICKET}", user_id=VIEWER)
    first = slack_server.post(body, content_type="application/json")
    retry = slack_server.post(
        body,
        content_type="application/json",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )

    assert first.status_code == 200
    assert retry.status_code == 200
    assert wait_for(lambda: len(fake_slack.method_calls("chat.postMessage")) >= 1)
    time.sleep(0.3)
    (posted,) = fake_slack.method_calls("chat.postMessage")
    assert posted["thread_ts"] == "1700000100.000100"
    assert "Group: HDFS" in posted["text"]


def test_url_verification_returns_challenge(slack_server: SlackAppServer) -> None:
    body = b'{"type": "url_verification", "token": "t", "challenge": "c-42"}'

    response = slack_server.post(body, content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {"challenge": "c-42"}
