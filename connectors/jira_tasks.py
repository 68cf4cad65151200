"""Jira sub-tasks of an issue, for `task` outbox actions.

The marker goes into the sub-task's description. Before creating one, the
parent's sub-tasks are read and each description is searched for the marker, so a
repeated delivery creates nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from router.intake.plugin import DeliveryAction, DeliveryResult, PermanentDeliveryError

if TYPE_CHECKING:
    from jira import JIRA, Issue

    from connectors.jira import JiraConnector

logger = logging.getLogger(__name__)

# NOTE: Jira Cloud and Server name the type "Sub-task" by default; a site that
# renamed it gets an HTTP 400 that names the type.
SUBTASK_TYPE: Final = "Sub-task"


def deliver_task(connector: JiraConnector, action: DeliveryAction) -> DeliveryResult:
    """Create the sub-task of a `task` action under its issue, unless it exists.

    Raises:
        RetryableDeliveryError: HTTP 429 or 5xx, a timeout or a lost connection.
        PermanentDeliveryError: any other HTTP error or a payload without title.
    """
    payload = action.payload
    title = str(payload.get("title") or "").strip()
    if not title:
        raise PermanentDeliveryError(
            f"Jira task of action {action.id} for {action.ticket_key} has no title; "
            "the policy's task needs one."
        )
    label = f"jira task of action {action.id} for {action.ticket_key}"
    client = connector.client()
    parent_key = str(
        payload.get("parent_record_id")
        or action.record_id
        or action.ticket_key.partition(":")[2]
    )
    parent = connector.call(
        f"{label}: reading the issue",
        lambda: client.issue(parent_key, fields="project,subtasks"),
    )
    for subtask in getattr(parent.fields, "subtasks", None) or []:
        child = _read_subtask(connector, client, str(subtask.key), label=label)
        if action.marker in str(getattr(child.fields, "description", "") or ""):
            logger.info("%s: sub-task %s has the marker already", label, child.key)
            return DeliveryResult(marker_found=True, details={"subtask": child.key})

    fields: dict[str, Any] = {
        "project": {"key": parent.fields.project.key},
        "parent": {"key": parent.key},
        "issuetype": {"name": SUBTASK_TYPE},
        "summary": title[:255],
        "description": _description(payload, action.marker),
    }
    assignee = payload.get("assignee")
    component = connector.group_component(str(assignee)) if assignee else None
    if component is not None:
        fields["components"] = [{"name": component}]
    created = connector.call(
        f"{label}: creating the sub-task",
        lambda: client.create_issue(fields=fields, prefetch=False),
    )
    logger.info("%s: created sub-task %s", label, created.key)
    return DeliveryResult(
        marker_found=False, details={"subtask": created.key, "parent": parent.key}
    )


def _read_subtask(
    connector: JiraConnector, client: JIRA, key: str, *, label: str
) -> Issue:
    return connector.call(
        f"{label}: reading sub-task {key}",
        lambda: client.issue(key, fields="description"),
    )


def _description(payload: dict[str, Any], marker: str) -> str:
    text = str(payload.get("description") or "").strip()
    assignee = payload.get("assignee")
    if assignee:
        text = f"{text}\nAssignee: {assignee}".strip()
    return f"{text}\n[{marker}]"
