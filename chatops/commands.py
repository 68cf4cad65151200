"""Parse the text of the `/opsroute` slash command."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatops.permissions import Role

# Ticket ids as the systems write them: INC0012345, PROJ-123, 00001234, and the
# store's `system:id` form.
TICKET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,120}$")
GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _./&-]{0,120}$")


@dataclass(frozen=True)
class Subcommand:
    """One subcommand: its usage line, what it does and the role it needs."""

    name: str
    usage: str
    summary: str
    role: Role | None


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "ack", "ack TICKET", "acknowledge the ticket's escalation", Role.RESPONDER
    ),
    Subcommand(
        "assign",
        "assign TICKET GROUP",
        "reassign the ticket to a resolver group",
        Role.RESPONDER,
    ),
    Subcommand(
        "escalate",
        "escalate TICKET [reason]",
        "escalate to the next level now",
        Role.RESPONDER,
    ),
    Subcommand("why", "why TICKET", "explain the routing decision", Role.VIEWER),
    Subcommand(
        "status",
        "status [TICKET]",
        "show a ticket, or the open escalations and reviews",
        Role.VIEWER,
    ),
    Subcommand("queue", "queue", "list the tickets waiting for review", Role.VIEWER),
    Subcommand("help", "help", "show this list", None),
)
BY_NAME = {subcommand.name: subcommand for subcommand in SUBCOMMANDS}


@dataclass(frozen=True)
class Command:
    """A parsed subcommand with its arguments."""

    name: str
    ticket: str | None = None
    group: str | None = None
    reason: str | None = None

    @property
    def role(self) -> Role | None:
        """Return the role the subcommand needs (None for help)."""
        return BY_NAME[self.name].role


class CommandError(ValueError):
    """The command text is not a known subcommand with valid arguments."""


def parse_command(text: str) -> Command:
    """Parse `/opsroute` text such as "assign INC0012345 Network".

    An empty text is `help`.

    Raises:
        CommandError: the subcommand is unknown or its arguments are invalid.
    """
    words = text.split()
    if not words:
        return Command("help")
    name, arguments = words[0].lower(), words[1:]
    if name not in BY_NAME:
        raise CommandError(f"`{words[0][:40]}` is not an opsroute command.")
    usage = BY_NAME[name].usage

    if name in ("help", "queue"):
        if arguments:
            raise CommandError(f"`{name}` takes no arguments; usage: `{usage}`.")
        return Command(name)
    if name == "status" and not arguments:
        return Command(name)
    if not arguments:
        raise CommandError(f"`{name}` needs a ticket id; usage: `{usage}`.")
    ticket = _ticket(arguments[0], usage=usage)
    rest = arguments[1:]

    if name == "assign":
        group = " ".join(rest)
        if not group:
            raise CommandError(f"`assign` needs a group; usage: `{usage}`.")
        if not GROUP_NAME.match(group):
            raise CommandError(f"Group `{group[:60]}` contains invalid characters.")
        return Command(name, ticket=ticket, group=group)
    if name == "escalate":
        return Command(name, ticket=ticket, reason=" ".join(rest) or None)
    if rest:
        raise CommandError(f"`{name}` takes one ticket id; usage: `{usage}`.")
    return Command(name, ticket=ticket)


def _ticket(value: str, *, usage: str) -> str:
    if not TICKET_ID.match(value):
        raise CommandError(
            f"`{value[:60]}` is not a ticket id such as INC0012345, PROJ-123 or "
            f"00001234; usage: `{usage}`."
        )
    return value


def help_text(problem: str | None = None) -> str:
    """Return the help message, after `problem` when the input was invalid."""
    lines = [problem, ""] if problem else []
    lines.append("*opsroute commands*")
    for subcommand in SUBCOMMANDS:
        needs = f" (role: {subcommand.role.label})" if subcommand.role else ""
        lines.append(f"• `/opsroute {subcommand.usage}`: {subcommand.summary}{needs}")
    lines.append("Ticket ids are the systems' own: INC0012345, PROJ-123, 00001234.")
    return "\n".join(lines)
