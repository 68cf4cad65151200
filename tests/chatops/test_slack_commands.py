"""Parsing `/opsroute` text and the help message."""

from __future__ import annotations

import pytest

from chatops.commands import (
    SUBCOMMANDS,
    Command,
    CommandError,
    help_text,
    parse_command,
)
from chatops.permissions import Role


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Command("help")),
        ("help", Command("help")),
        ("ack INC0012345", Command("ack", ticket="INC0012345")),
        ("ACK PROJ-123", Command("ack", ticket="PROJ-123")),
        ("assign 00001234 Service Desk", Command("assign", "00001234", "Service Desk")),
        ("escalate INC0012345", Command("escalate", ticket="INC0012345")),
        (
            "escalate INC0012345 customer is down",
            Command("escalate", ticket="INC0012345", reason="customer is down"),
        ),
        ("why jira:HDFS-123", Command("why", ticket="jira:HDFS-123")),
        ("status", Command("status")),
        ("status INC0012345", Command("status", ticket="INC0012345")),
        ("queue", Command("queue")),
    ],
)
def test_parse_command_accepts(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("reboot", "`reboot` is not an opsroute command."),
        ("ack", "`ack` needs a ticket id; usage: `ack TICKET`."),
        ("assign INC0012345", "`assign` needs a group; usage: `assign TICKET GROUP`."),
        ("why INC1 INC2", "`why` takes one ticket id; usage: `why TICKET`."),
        ("queue now", "`queue` takes no arguments; usage: `queue`."),
        ("why ../etc", "`../etc` is not a ticket id such as INC0012345"),
    ],
)
def test_parse_command_rejects(text: str, message: str) -> None:
    with pytest.raises(CommandError) as raised:
        parse_command(text)

    assert str(raised.value).startswith(message)


def test_help_lists_every_subcommand() -> None:
    text = help_text()

    for subcommand in SUBCOMMANDS:
        assert f"• `/opsroute {subcommand.usage}`" in text


def test_help_names_roles() -> None:
    text = help_text()

    assert (
        "`/opsroute ack TICKET`: acknowledge the ticket's escalation (role: responder)"
        in (text)
    )
    assert "`/opsroute help`: show this list\n" in text


def test_help_starts_with_problem() -> None:
    assert help_text("`x` is not an opsroute command.").startswith(
        "`x` is not an opsroute command.\n\n*opsroute commands*"
    )


def test_command_roles() -> None:
    assert parse_command("assign A-1 HDFS").role is Role.RESPONDER
    assert parse_command("why A-1").role is Role.VIEWER
    assert parse_command("help").role is None
