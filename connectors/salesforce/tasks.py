"""Salesforce Tasks linked to a case (`WhatId` = the Case Id), for `task` actions.

The marker goes into the Task's Description, and the case's Tasks are searched
for it before one is created, so a repeated delivery creates nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from simple_salesforce.format import format_soql

from router.intake.plugin import DeliveryAction, DeliveryResult, PermanentDeliveryError

if TYPE_CHECKING:
    from connectors.salesforce.connector import SalesforceConnector

logger = logging.getLogger(__name__)


def deliver_task(
    connector: SalesforceConnector, action: DeliveryAction
) -> DeliveryResult:
    """Create the Task of a `task` action on its case, unless it exists.

    Raises:
        RetryableDeliveryError: HTTP 5xx, REQUEST_LIMIT_EXCEEDED, a timeout or a
            lost connection.
        PermanentDeliveryError: any other API error or a payload without title.
    """
    payload = action.payload
    title = str(payload.get("title") or "").strip()
    if not title:
        raise PermanentDeliveryError(
            f"Salesforce task of action {action.id} for {action.ticket_key} has no "
            "title; the policy's task needs one."
        )
    label = f"salesforce task of action {action.id} for {action.ticket_key}"
    case_id = connector.case_id(action)
    soql = format_soql("SELECT Id, Description FROM Task WHERE WhatId = {}", case_id)
    existing = connector.call(f"{label}: reading tasks", lambda sf: sf.query_all(soql))
    for row in existing.get("records", []):
        if action.marker in str(row.get("Description") or ""):
            logger.info("%s: task %s has the marker already", label, row.get("Id"))
            return DeliveryResult(marker_found=True, details={"task_id": row["Id"]})

    fields: dict[str, Any] = {
        "WhatId": case_id,
        # Subject is a 255-character field.
        "Subject": title[:255],
        "Description": _description(payload, action.marker),
        "Status": "Not Started",
    }
    created = connector.call(
        f"{label}: creating the task",
        lambda sf: connector.sobject(sf, "Task").create(fields),
    )
    logger.info("%s: created task %s", label, created.get("id"))
    return DeliveryResult(
        marker_found=False, details={"task_id": created.get("id"), "case_id": case_id}
    )


def _description(payload: dict[str, Any], marker: str) -> str:
    # NOTE: Queues cannot own Tasks, so a group assignee is named in the text only.
    text = str(payload.get("description") or "").strip()
    assignee = payload.get("assignee")
    if assignee:
        text = f"{text}\nAssignee: {assignee}".strip()
    return f"{text}\n[{marker}]"
