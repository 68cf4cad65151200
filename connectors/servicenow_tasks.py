"""ServiceNow tasks linked to a record: `incident_task` for incidents, else `task`.

The marker goes into the task's description, and the record's linked tasks are
searched for it before one is created, so a repeated delivery creates nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from router.intake.plugin import DeliveryAction, DeliveryResult, PermanentDeliveryError

if TYPE_CHECKING:
    from connectors.servicenow import ServiceNowConnector

logger = logging.getLogger(__name__)


def deliver_task(
    connector: ServiceNowConnector, action: DeliveryAction
) -> DeliveryResult:
    """Create the task of a `task` action under its parent record, unless it exists.

    Raises:
        RetryableDeliveryError: HTTP 429 or 5xx, a timeout or a lost connection.
        PermanentDeliveryError: any other HTTP error, a bad payload or group.
    """
    payload = action.payload
    title = str(payload.get("title") or "").strip()
    if not title:
        raise PermanentDeliveryError(
            f"ServiceNow task of action {action.id} for {action.ticket_key} has no "
            "title; the policy's task needs one."
        )
    table = connector.parent_table(action)
    parent = connector.parent_sys_id(action, table)
    task_table, link_field = (
        ("incident_task", "incident")
        if table == "incident"
        else (
            "task",
            "parent",
        )
    )
    query = f"{link_field}={parent}^" + connector.like_condition(
        "description", action.marker
    )
    found = connector.query_table(task_table, query=query, fields=["sys_id"], limit=1)
    if found:
        logger.info(
            "Task %s of %s already exists, nothing written", action.marker, parent
        )
        return DeliveryResult(
            marker_found=True, details={"task_sys_id": found[0]["sys_id"]}
        )

    fields: dict[str, Any] = {
        link_field: parent,
        "short_description": title,
        "description": _description(payload, action.marker),
    }
    assignee = payload.get("assignee")
    group = connector.known_group_target(str(assignee)) if assignee else None
    if group is not None:
        fields["assignment_group"] = connector.group_sys_id(group)
    created = connector.create_record(task_table, fields, what=f"task for {parent}")
    logger.info("Created %s %s under %s", task_table, created.get("sys_id"), parent)
    return DeliveryResult(
        marker_found=False,
        details={"task_sys_id": created.get("sys_id"), "table": task_table},
    )


def _description(payload: dict[str, Any], marker: str) -> str:
    text = str(payload.get("description") or "").strip()
    assignee = payload.get("assignee")
    if assignee:
        text = f"{text}\nAssignee: {assignee}".strip()
    return f"{text}\n[{marker}]"
