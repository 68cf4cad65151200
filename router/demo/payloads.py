"""Shape one row of the bundled data sets as a record of each source system.

The demo sends Apache Jira issues and helpdesk tickets through the real intake and
mapping code. Each row is shaped as a ServiceNow Table API incident, a Jira REST v2
issue or a Salesforce Case, exactly as the shipped mapping files expect. Ids and record
numbers are derived from the row's id, so the same row always gives the same record.

The routing label (the Apache project, or the helpdesk group) never appears in a
field that the mapping copies into the classifier's inputs. In Jira records the
project is in `fields.project` and in the key, which the mapping keeps in `raw` and
`external_id` only.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from router.datasets.catalog import APACHE_ISSUE_TYPES
from router.mapping.transforms import salesforce_id_suffix

# Rows without a type (the helpdesk sets) become Tasks in every system, so the
# classifier gets the same issue_type whichever system a row is shaped for.
DEFAULT_ISSUE_TYPE: Final = "Task"
# Apache priority names -> ServiceNow priority codes (1 Critical .. 5 Planning).
SERVICENOW_PRIORITIES: Final = {
    "Blocker": "1",
    "Critical": "2",
    "Major": "3",
    "Minor": "4",
    "Trivial": "5",
}
# Priority codes -> (impact, urgency), chosen so that ServiceNow's default
# impact x urgency matrix gives the same priority back.
SERVICENOW_IMPACT_URGENCY: Final = {
    "1": ("1", "1"),
    "2": ("1", "2"),
    "3": ("2", "2"),
    "4": ("2", "3"),
    "5": ("3", "3"),
}
# Salesforce Cases have four priorities (Critical, High, Medium, Low) for Apache's
# five. Each name moves down one step, and Minor and Trivial share Low, because
# both mean "no deadline" to an agent.
SALESFORCE_PRIORITIES: Final = {
    "Blocker": "Critical",
    "Critical": "High",
    "Major": "Medium",
    "Minor": "Low",
    "Trivial": "Low",
}
# A row without a priority gets Jira's and Salesforce's default, the middle one.
DEFAULT_PRIORITY: Final = "Major"
# Rows without a date (the helpdesk sets) get this fixed time, so records stay stable.
DEFAULT_CREATED_AT: Final = datetime(2024, 1, 15, 10, 22, 33, tzinfo=UTC)

SERVICENOW_BASE_URL: Final = "https://servicenow.example.com"
JIRA_BASE_URL: Final = "https://jira.example.com"
SALESFORCE_API_VERSION: Final = "v60.0"
HELPDESK_PROJECT: Final = "HELP"

_JIRA_KEY = re.compile(r"^([A-Z][A-Z0-9_]*)-(\d+)$")
_BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, slots=True)
class DemoRow:
    """One ticket of a bundled data set, before it is shaped for a system.

    `sequence` is the row's position in the demo run. When it is given, it numbers
    the ServiceNow incident, the Salesforce case and the Jira issue id, so they are
    unique. Without it, they are derived from a hash of `external_id`.
    """

    external_id: str
    title: str
    description: str = ""
    issue_type: str | None = None
    priority_name: str | None = None
    created_at: datetime | None = None
    sequence: int | None = None


def helpdesk_external_id(sequence: int) -> str:
    """Return a Jira-style id (`HELP-42`) for a helpdesk row, which has none."""
    return f"{HELPDESK_PROJECT}-{sequence}"


def jira_issue_type(issue_type: str | None) -> str:
    """Return the Jira issue type name for an Apache changelog section or a name."""
    if issue_type is None or not issue_type.strip():
        return DEFAULT_ISSUE_TYPE
    return APACHE_ISSUE_TYPES.get(issue_type.strip().upper(), issue_type.strip())


def _digest(row: DemoRow, system: str) -> bytes:
    seed = f"{system}:{row.external_id}".encode()
    return hashlib.blake2b(seed, digest_size=16).digest()


def _record_number(row: DemoRow, system: str, digits: int) -> int:
    # NOTE: Without a sequence, numbers come from a hash and two rows can share one.
    if row.sequence is not None:
        return row.sequence % 10**digits
    return int.from_bytes(_digest(row, system), "big") % 10**digits


def _created(row: DemoRow) -> datetime:
    created = row.created_at or DEFAULT_CREATED_AT
    if created.tzinfo is None:
        return created.replace(tzinfo=UTC)
    return created.astimezone(UTC)


def _priority_name(row: DemoRow) -> str:
    name = (row.priority_name or DEFAULT_PRIORITY).strip().capitalize()
    if name not in SERVICENOW_PRIORITIES:
        expected = ", ".join(SERVICENOW_PRIORITIES)
        raise ValueError(
            f"priority {row.priority_name!r} of row {row.external_id!r} is unknown; "
            f"expected one of {expected}, or None"
        )
    return name


def to_servicenow_record(row: DemoRow) -> dict[str, Any]:
    """Return the row as a Table API incident (`GET /api/now/table/incident`)."""
    priority = SERVICENOW_PRIORITIES[_priority_name(row)]
    impact, urgency = SERVICENOW_IMPACT_URGENCY[priority]
    stamp = _created(row).strftime("%Y-%m-%d %H:%M:%S")
    return {
        "sys_id": _digest(row, "servicenow").hex(),
        "number": f"INC{_record_number(row, 'servicenow', 7):07d}",
        "short_description": row.title,
        "description": row.description,
        "priority": priority,
        "urgency": urgency,
        "impact": impact,
        "category": jira_issue_type(row.issue_type),
        "subcategory": "",
        "state": "1",
        "incident_state": "1",
        "active": "true",
        "assignment_group": "",
        "assigned_to": "",
        "caller_id": "",
        "company": "",
        "contact_type": "self-service",
        "opened_at": stamp,
        "sys_created_on": stamp,
        "sys_created_by": "opsroute.demo",
        "sys_updated_on": stamp,
        "sys_updated_by": "opsroute.demo",
        "sys_mod_count": "0",
        "reassignment_count": "0",
        "sys_class_name": "incident",
        "close_code": "",
        "close_notes": "",
        "work_notes": "",
        "comments": "",
    }


def _jira_key(row: DemoRow) -> tuple[str, str]:
    match = _JIRA_KEY.match(row.external_id)
    if match:
        return row.external_id, match.group(1)
    number = _record_number(row, "jira-key", 6)
    return f"{HELPDESK_PROJECT}-{number}", HELPDESK_PROJECT


def _millis_utc(moment: datetime) -> str:
    # Jira and Salesforce write milliseconds and an offset without a colon:
    # 2024-01-15T10:22:33.000+0000.
    millis = moment.microsecond // 1000
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}+0000"


def to_jira_issue(row: DemoRow) -> dict[str, Any]:
    """Return the row as a Jira REST v2 issue (`GET /rest/api/2/issue/{key}`)."""
    key, project = _jira_key(row)
    issue_id = str(10000 + _record_number(row, "jira", 8))
    issue_type = jira_issue_type(row.issue_type)
    stamp = _millis_utc(_created(row))
    api = f"{JIRA_BASE_URL}/rest/api/2"
    return {
        "expand": "renderedFields,names,schema,operations,editmeta,changelog",
        "id": issue_id,
        "self": f"{api}/issue/{issue_id}",
        "key": key,
        "fields": {
            "summary": row.title,
            "description": row.description or None,
            "issuetype": {
                "name": issue_type,
                "subtask": issue_type == "Sub-task",
            },
            "priority": {"name": _priority_name(row)},
            "status": {
                "name": "Open",
                "statusCategory": {"id": 2, "key": "new", "name": "To Do"},
            },
            "project": {"key": project, "name": project, "projectTypeKey": "software"},
            "components": [],
            "labels": [],
            "assignee": None,
            "reporter": None,
            "resolution": None,
            "resolutiondate": None,
            "created": stamp,
            "updated": stamp,
        },
    }


def _salesforce_case_id(row: DemoRow) -> str:
    value = int.from_bytes(_digest(row, "salesforce"), "big")
    chars = []
    for _ in range(12):
        value, remainder = divmod(value, 62)
        chars.append(_BASE62[remainder])
    id15 = "500" + "".join(chars)
    return id15 + salesforce_id_suffix(id15)


def to_salesforce_case(row: DemoRow) -> dict[str, Any]:
    """Return the row as a Case sObject, as `GET .../sobjects/Case/{Id}` returns it."""
    case_id = _salesforce_case_id(row)
    stamp = _millis_utc(_created(row))
    return {
        "attributes": {
            "type": "Case",
            "url": f"/services/data/{SALESFORCE_API_VERSION}/sobjects/Case/{case_id}",
        },
        "Id": case_id,
        "CaseNumber": f"{_record_number(row, 'salesforce', 8):08d}",
        "Subject": row.title,
        "Description": row.description or None,
        "Priority": SALESFORCE_PRIORITIES[_priority_name(row)],
        "Type": jira_issue_type(row.issue_type),
        "Status": "New",
        "Origin": "Web",
        "Reason": None,
        "IsClosed": False,
        "IsEscalated": False,
        "AccountId": None,
        "ContactId": None,
        "ClosedDate": None,
        "CreatedDate": stamp,
        "LastModifiedDate": stamp,
        "SystemModstamp": stamp,
    }


def to_system_record(system: str, row: DemoRow) -> dict[str, Any]:
    """Return the row as a record of `system`: servicenow, jira or salesforce."""
    shapers = {
        "servicenow": to_servicenow_record,
        "jira": to_jira_issue,
        "salesforce": to_salesforce_case,
    }
    try:
        shaper = shapers[system]
    except KeyError:
        raise ValueError(
            f"unknown system {system!r}; expected one of {', '.join(shapers)}"
        ) from None
    return shaper(row)
