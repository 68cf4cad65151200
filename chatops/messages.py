"""Block Kit messages: escalations, review items and replies.

Each builder takes a `notification` outbox payload (see the notifier) and the state
stored with the message since it was posted, and returns `(text, blocks)`: the
plain text is the fallback that notifications and screen readers show.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

# Slack limits: 100 options per select, 75 characters per option text, 150 per
# option value, 3000 per section text.
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_SECTION_TEXT = 3000

ACTION_ACK = "opsroute_ack"
ACTION_REASSIGN = "opsroute_reassign"
ACTION_ESCALATE = "opsroute_escalate"
ACTION_WHY = "opsroute_why"
ACTION_REVIEW_APPROVE = "opsroute_review_approve"
ACTION_REVIEW_PICK = "opsroute_review_pick"

Blocks = list[dict[str, Any]]


def choice_value(ticket_key: str, group: str) -> str:
    """Return the value of a group choice, `ticket_key|group`."""
    return f"{ticket_key}|{group}"[:MAX_OPTION_VALUE]


def parse_choice_value(value: str) -> tuple[str, str]:
    """Split a `ticket_key|group` value; raise ValueError if it has no `|`."""
    ticket_key, separator, group = value.rpartition("|")
    if not separator or not ticket_key or not group:
        raise ValueError(f"Choice value {value[:60]!r} is not 'ticket|group'.")
    return ticket_key, group


def escalation_message(
    payload: dict[str, Any],
    state: dict[str, Any],
    *,
    groups: Sequence[str],
    visible_fields: Collection[str],
    now: datetime,
) -> tuple[str, Blocks]:
    """Build the message of an escalation, with its buttons unless it is resolved."""
    ticket_key = str(payload.get("ticket_key") or "")
    group = state.get("group") or payload.get("resolver_group") or "unassigned"
    escalation = payload.get("escalation") or {}
    facts = [
        ("Priority", _priority(payload.get("priority"))),
        ("SLA", sla_left(escalation.get("sla_due_at"), now=now)),
        ("Account tier", str((payload.get("context") or {}).get("account_tier", "-"))),
        ("Resolver group", str(group)),
        ("Confidence", _confidence(payload.get("confidence"))),
        ("Level", _level(escalation)),
    ]

    text = f"Escalation: {_title_line(payload, linked=False)}"
    blocks: Blocks = [
        _section(f":rotating_light: *Escalation* {_title_line(payload, linked=True)}"),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{name}*\n{value}"}
                for name, value in facts
            ],
        },
    ]

    context = context_lines(payload.get("context") or {}, visible_fields)
    reason = payload.get("reason")
    if reason or context:
        lines = ([f"_Why:_ {reason}"] if reason else []) + context
        blocks.append(_section("\n".join(lines)))

    status = _status_line(state)
    if status:
        blocks.append(_context(status))
    if state.get("status") != "resolved":
        blocks.append(_escalation_actions(ticket_key, groups))
    return text, blocks


def review_message(
    payload: dict[str, Any],
    state: dict[str, Any],
    *,
    groups: Sequence[str],
    visible_fields: Collection[str],
) -> tuple[str, Blocks]:
    """Build the message of a review item, with approve and pick while it is open."""
    ticket_key = str(payload.get("ticket_key") or "")
    suggested = str(payload.get("resolver_group") or "")
    candidates = payload.get("candidates") or []
    ranked = "\n".join(
        f"{index}. {item.get('group')} ({float(item.get('score', 0.0)):.2f})"
        for index, item in enumerate(candidates[:5], start=1)
    )

    text = f"Review: {_title_line(payload, linked=False)}"
    blocks: Blocks = [
        _section(f":mag: *Review* {_title_line(payload, linked=True)}"),
        _section(
            f"*Suggested:* {suggested or '-'} "
            f"(confidence {_confidence(payload.get('confidence'))})\n"
            f"*Top candidates:*\n{ranked or '-'}"
        ),
    ]
    context = context_lines(payload.get("context") or {}, visible_fields)
    if context:
        blocks.append(_section("\n".join(context)))

    status = _status_line(state)
    if status:
        blocks.append(_context(status))
    if state.get("status") != "resolved":
        blocks.append(_review_actions(ticket_key, suggested, candidates, groups))
    return text, blocks


def _review_actions(
    ticket_key: str,
    suggested: str,
    candidates: Sequence[dict[str, Any]],
    groups: Sequence[str],
) -> dict[str, Any]:
    # The candidates come first in the picker, then the other groups.
    options = [str(item.get("group")) for item in candidates if item.get("group")]
    options += [name for name in groups if name not in options]
    elements: list[dict[str, Any]] = []
    if suggested:
        elements.append(
            {
                "type": "button",
                "action_id": ACTION_REVIEW_APPROVE,
                "style": "primary",
                "text": _plain(f"Approve {suggested}"[:MAX_OPTION_TEXT]),
                "value": choice_value(ticket_key, suggested),
            }
        )
    elements.append(
        _group_select(ACTION_REVIEW_PICK, ticket_key, options, "Pick another group")
    )
    return {"type": "actions", "block_id": "review", "elements": elements}


def context_lines(
    context: dict[str, Any], visible_fields: Collection[str]
) -> list[str]:
    """Return `• field: value` lines for the context fields the role may see."""
    show_all = "*" in visible_fields
    return [
        f"• {name}: {value}"
        for name, value in sorted(context.items())
        if show_all or name in visible_fields
    ]


def sla_left(due_at: str | None, *, now: datetime) -> str:
    """Return "1h 05m left" or "breached 10m ago" for an ISO 8601 due time."""
    if not due_at:
        return "-"
    try:
        due = datetime.fromisoformat(due_at)
    except ValueError:
        return "-"
    seconds = int((due - now).total_seconds())
    span = _span(abs(seconds))
    return f"{span} left" if seconds >= 0 else f"breached {span} ago"


def _span(seconds: int) -> str:
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def _escalation_actions(ticket_key: str, groups: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": "escalation",
        "elements": [
            _button(ACTION_ACK, "Acknowledge", ticket_key, style="primary"),
            _group_select(ACTION_REASSIGN, ticket_key, groups, "Reassign"),
            _button(ACTION_ESCALATE, "Escalate", ticket_key, style="danger"),
            _button(ACTION_WHY, "Why", ticket_key),
        ],
    }


def _button(
    action_id: str, label: str, value: str, *, style: str | None = None
) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": _plain(label),
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _group_select(
    action_id: str, ticket_key: str, groups: Sequence[str], placeholder: str
) -> dict[str, Any]:
    # NOTE: A select shows at most 100 options, so groups past the 100th are
    # reachable only through `/opsroute assign`.
    return {
        "type": "static_select",
        "action_id": action_id,
        "placeholder": _plain(placeholder),
        "options": [
            {
                "text": _plain(name[:MAX_OPTION_TEXT]),
                "value": choice_value(ticket_key, name),
            }
            for name in list(dict.fromkeys(groups))[:MAX_OPTIONS]
        ],
    }


def _status_line(state: dict[str, Any]) -> str:
    parts = []
    if state.get("acknowledged_by"):
        parts.append(f"Acknowledged by {state['acknowledged_by']}")
    if state.get("reassigned_by"):
        parts.append(f"Reassigned to {state.get('group')} by {state['reassigned_by']}")
    if state.get("reviewed_by"):
        parts.append(f"Routed to {state.get('group')} by {state['reviewed_by']}")
    if state.get("escalated_by"):
        parts.append(f"Escalated by {state['escalated_by']}")
    ticket_state = state.get("ticket_state")
    if state.get("status") == "resolved":
        closed_as = (
            f" ({ticket_state})" if ticket_state not in (None, "Resolved") else ""
        )
        parts.append(f"Resolved{closed_as}")
    elif ticket_state:
        parts.append(f"State: {ticket_state}")
    return " · ".join(parts)


def _title_line(payload: dict[str, Any], *, linked: bool) -> str:
    ticket_key = str(payload.get("ticket_key") or "")
    external_id = ticket_key.partition(":")[2] or ticket_key
    title = str(payload.get("title") or "")
    link = payload.get("link")
    label = f"<{link}|{external_id}>" if linked and link else external_id
    return f"{label} {title}".strip()[:MAX_SECTION_TEXT]


def _priority(value: Any) -> str:
    return f"P{value}" if isinstance(value, int) else "-"


def _confidence(value: Any) -> str:
    return f"{float(value):.2f}" if isinstance(value, int | float) else "-"


def _level(escalation: dict[str, Any]) -> str:
    if not escalation:
        return "-"
    return f"{escalation.get('policy', '?')} level {escalation.get('level', '?')}"


def _section(text: str) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": text[:MAX_SECTION_TEXT]},
    }


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}
