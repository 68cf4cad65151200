"""A fake ServiceNow Table API: records, groups and the journal of work notes.

It implements the calls the connector makes. The first is `GET
/api/now/table/<table>` with an encoded `sysparm_query` (conditions joined by `^`,
operators `=`, `!=`, `LIKE`, `STARTSWITH`), `sysparm_limit`, `sysparm_offset` and
`sysparm_fields`. The second is `PUT` or `PATCH /api/now/table/<table>/<sys_id>`.
The third is `POST /api/now/table/<table>`, which inserts a record.
As on a real instance, journal fields (`work_notes`, `comments`) written to a
record become rows of `sys_journal_field` and read back as "" from the record.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Final

from router.sandbox.server import (
    FakeResponse,
    FakeServer,
    RecordedCall,
    json_response,
)

JOURNAL_FIELDS: Final = frozenset({"work_notes", "comments"})
_CONDITION = re.compile(
    r"^([a-z0-9_.]+)(LIKE|STARTSWITH|!=|>=|<=|=|>|<)(.*)$", re.DOTALL
)
# Tables of a new fake. A query of any other table gets 400 "Invalid table".
DEFAULT_TABLES: Final = (
    "incident",
    "incident_task",
    "sc_req_item",
    "sn_customerservice_case",
    "sys_journal_field",
    "sys_user",
    "sys_user_group",
    "task",
)
_TABLE_PATH = re.compile(r"^/api/now/table/([a-z0-9_]+)(?:/([0-9a-f]{32}))?$")


def new_sys_id() -> str:
    """Return a random 32-character sys_id."""
    return uuid.uuid4().hex


def service_now_error(status: int, message: str, detail: str) -> FakeResponse:
    """Return an error in the Table API's shape."""
    document = {"error": {"message": message, "detail": detail}, "status": "failure"}
    return json_response(status, document)


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("value", ""))
    return "" if value is None else str(value)


def _matches(record: dict[str, Any], condition: str) -> bool:
    if condition.startswith("ORDERBY") or not condition:
        return True
    match = _CONDITION.match(condition)
    if match is None:
        raise ValueError(f"the fake cannot read condition {condition!r}")
    field, operator, expected = match.groups()
    actual = _plain(record.get(field))
    if operator == "=":
        return actual == expected
    if operator == "!=":
        return actual != expected
    if operator == ">":
        return actual > expected
    if operator == ">=":
        return actual >= expected
    if operator == "<":
        return actual < expected
    if operator == "<=":
        return actual <= expected
    if operator == "LIKE":
        return expected.lower() in actual.lower()
    return actual.lower().startswith(expected.lower())


class FakeServiceNow(FakeServer):
    """The Table API of one instance, with Basic authentication."""

    def __init__(
        self, *, user: str = "opsroute", password: str = "snow-password", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.user = user
        self.password = password
        self.tables: dict[str, dict[str, dict[str, Any]]] = {
            table: {} for table in DEFAULT_TABLES
        }
        # Roles the API user lacks, as tables it may not read (HTTP 403).
        self.forbidden_tables: set[str] = set()

    # Seeding and reading state

    def add_record(self, table: str, record: dict[str, Any]) -> dict[str, Any]:
        """Store a record, giving it a sys_id if it has none; return it."""
        stored = {"sys_id": new_sys_id(), "sys_mod_count": "0", **record}
        self.tables.setdefault(table, {})[stored["sys_id"]] = stored
        return stored

    def add_group(self, name: str) -> str:
        """Create a sys_user_group row; return its sys_id."""
        return str(self.add_record("sys_user_group", {"name": name})["sys_id"])

    def add_user(self, user_name: str, *, active: bool = True) -> str:
        """Create a sys_user row; return its sys_id."""
        record = {"user_name": user_name, "active": "true" if active else "false"}
        return str(self.add_record("sys_user", record)["sys_id"])

    def record(self, table: str, sys_id: str) -> dict[str, Any]:
        """Return a stored record."""
        return self.tables[table][sys_id]

    def journal(self, sys_id: str, element: str = "work_notes") -> list[str]:
        """Return the journal entries of one record field, oldest first."""
        rows = self.tables.get("sys_journal_field", {}).values()
        return [
            row["value"]
            for row in rows
            if row["element_id"] == sys_id and row["element"] == element
        ]

    # Endpoints

    def handle(self, call: RecordedCall) -> FakeResponse:
        """Return the response to one Table API request."""
        if call.basic_auth() != (self.user, self.password):
            return service_now_error(
                401, "User Not Authenticated", "Required to provide Auth information"
            )
        match = _TABLE_PATH.match(call.path)
        if match is None:
            return service_now_error(400, "Invalid URL", call.path)
        table, sys_id = match.groups()
        if call.method == "GET" and sys_id is None:
            return self._query(table, call)
        if call.method == "GET":
            return self._get_one(table, sys_id)
        if call.method in ("PUT", "PATCH") and sys_id is not None:
            return self._update(table, sys_id, call)
        if call.method == "POST" and sys_id is None:
            return self._insert(table, call)
        return service_now_error(405, "Method not Supported", call.method)

    def _query(self, table: str, call: RecordedCall) -> FakeResponse:
        if table not in self.tables:
            return service_now_error(400, f"Invalid table {table}", "")
        if table in self.forbidden_tables:
            return service_now_error(
                403, "User Not Authorized", f"Read access to {table} is denied"
            )
        conditions = (call.param("sysparm_query") or "").split("^")
        rows = [
            row
            for row in self.tables[table].values()
            if all(_matches(row, condition) for condition in conditions)
        ]
        # ORDERBY conditions sort in the order given; later ones break ties.
        for condition in reversed(conditions):
            if condition.startswith("ORDERBYDESC"):
                field = condition.removeprefix("ORDERBYDESC")
                rows.sort(key=lambda row: _plain(row.get(field)), reverse=True)
            elif condition.startswith("ORDERBY"):
                field = condition.removeprefix("ORDERBY")
                rows.sort(key=lambda row: _plain(row.get(field)))
        offset = int(call.param("sysparm_offset") or 0)
        limit = int(call.param("sysparm_limit") or 10000)
        page = rows[offset : offset + limit]
        fields = [
            name for name in (call.param("sysparm_fields") or "").split(",") if name
        ]
        if fields:
            page = [{name: row.get(name, "") for name in fields} for row in page]
        return json_response(
            200, {"result": page}, headers={"X-Total-Count": str(len(rows))}
        )

    def _get_one(self, table: str, sys_id: str) -> FakeResponse:
        record = self.tables.get(table, {}).get(sys_id)
        if record is None:
            return service_now_error(
                404,
                "No Record found",
                "Record doesn't exist or ACL restricts the record retrieval",
            )
        return json_response(200, {"result": record})

    def _update(self, table: str, sys_id: str, call: RecordedCall) -> FakeResponse:
        record = self.tables.get(table, {}).get(sys_id)
        if record is None:
            return service_now_error(
                404,
                "No Record found",
                "Record doesn't exist or ACL restricts the record retrieval",
            )
        try:
            changes = json.loads(call.body)
        except json.JSONDecodeError as exc:
            return service_now_error(400, "Exception while reading request", str(exc))
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        for name, value in changes.items():
            if name in JOURNAL_FIELDS:
                self.add_record(
                    "sys_journal_field",
                    {
                        "name": table,
                        "element": name,
                        "element_id": sys_id,
                        "value": value,
                        "sys_created_on": now,
                    },
                )
                record[name] = ""
            else:
                record[name] = value
        record["sys_mod_count"] = str(int(record.get("sys_mod_count") or 0) + 1)
        record["sys_updated_on"] = now
        record["sys_updated_by"] = self.user
        return json_response(200, {"result": record})

    def change_record(
        self,
        table: str,
        sys_id: str,
        changes: dict[str, Any],
        *,
        by: str,
        at: str | None = None,
    ) -> dict[str, Any]:
        """Apply a change as user `by` made it in the UI; return the record."""
        record = self.tables[table][sys_id]
        record.update(changes)
        record["sys_mod_count"] = str(int(record.get("sys_mod_count") or 0) + 1)
        record["sys_updated_on"] = at or datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        record["sys_updated_by"] = by
        return record

    def _insert(self, table: str, call: RecordedCall) -> FakeResponse:
        try:
            fields = json.loads(call.body)
        except json.JSONDecodeError as exc:
            return service_now_error(400, "Exception while reading request", str(exc))
        number = f"TASK{len(self.tables.get(table, {})) + 1:07d}"
        record = self.add_record(table, {"number": number, **fields})
        return json_response(201, {"result": record})
