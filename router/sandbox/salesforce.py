"""A fake Salesforce REST API over TLS, with a throwaway CA made by `trustme`.

simple-salesforce always builds https:// URLs, so the fake serves TLS; tests hand
the client a `requests.Session` that trusts `ca_file`. It implements the SOQL
queries the connector sends (`Group` queues by name, `Case` by CaseNumber,
`CaseComment` by ParentId, `Task` by WhatId) and those of the account enricher
(`Account`, `Contract`, `Entitlement`), `PATCH sobjects/Case/<Id>`, `POST
sobjects/CaseComment/` and `POST sobjects/Task/`, with `Authorization: Bearer
<session id>`.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import trustme

from router.sandbox.server import (
    FakeResponse,
    FakeServer,
    RecordedCall,
    json_response,
)

_BASE = r"^/services/data/v\d+\.\d"
_QUERY_PATH = re.compile(_BASE + r"/query/?$")
_SOBJECT_PATH = re.compile(_BASE + r"/sobjects/(\w+)/(\w*)$")
# A SOQL string literal with backslash escapes, as format_soql writes it.
_LITERAL = r"'((?:[^'\\]|\\.)*)'"
_QUERIES = {
    "queue": re.compile(
        r"^SELECT Id FROM Group WHERE Type = 'Queue' AND Name = " + _LITERAL + "$"
    ),
    "case": re.compile(r"^SELECT Id FROM Case WHERE CaseNumber = " + _LITERAL + "$"),
    "comments": re.compile(
        r"^SELECT Id, CommentBody FROM CaseComment WHERE ParentId = " + _LITERAL + "$"
    ),
    "poll": re.compile(
        r"^SELECT (.+) FROM Case WHERE SystemModstamp >= (\S+) "
        r"ORDER BY SystemModstamp ASC, Id ASC$"
    ),
    "latest": re.compile(
        r"^SELECT Id FROM (Case|CaseComment) ORDER BY \w+ DESC LIMIT 1$"
    ),
    "tasks": re.compile(
        r"^SELECT Id, Description FROM Task WHERE WhatId = " + _LITERAL + "$"
    ),
    "account": re.compile(
        r"^SELECT Id, Name, AnnualRevenue, (\w+), (\w+), Owner\.Email FROM Account "
        r"WHERE Id = " + _LITERAL + "$"
    ),
    "contract": re.compile(
        r"^SELECT ContractNumber, EndDate, (\w+) FROM Contract WHERE AccountId = "
        + _LITERAL
        + r" AND Status = 'Activated' ORDER BY EndDate DESC LIMIT 1$"
    ),
    "entitlements": re.compile(
        r"^SELECT Name, Status FROM Entitlement WHERE AccountId = "
        + _LITERAL
        + r" AND Status = 'Active'$"
    ),
}
_MORE_PATH = re.compile(_BASE + r"/query/(01g[0-9]+)$")
SF_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
# The id of the API user that the fake records as the author of API updates.
API_USER_ID = "005000000000001AAA"


def sf_time(moment: datetime) -> str:
    """Return `moment` as the REST API writes datetimes: `...T10:22:33.000+0000`."""
    return moment.astimezone(UTC).strftime(SF_TIME_FORMAT)[:-3] + "+0000"


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


def salesforce_error(status: int, code: str, message: str) -> FakeResponse:
    """Return an error in the REST API's shape: a list of {message, errorCode}."""
    body = json.dumps([{"message": message, "errorCode": code}]).encode()
    return FakeResponse(status, body, {"Content-Type": "application/json"})


def _unescape(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal)


class FakeSalesforce(FakeServer):
    """One org's REST API, served over TLS on 127.0.0.1."""

    def __init__(
        self,
        *,
        certificate_dir: Path,
        session_id: str = "00Dfake!session",
        **kwargs: Any,
    ) -> None:
        authority = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert("127.0.0.1").configure_cert(context)
        super().__init__(ssl_context=context, **kwargs)
        self.ca_file = certificate_dir / "fake-salesforce-ca.pem"
        authority.cert_pem.write_to_path(str(self.ca_file))
        self.session_id = session_id
        self.queues: dict[str, str] = {}
        self.cases: dict[str, dict[str, Any]] = {}
        self.case_comments: list[dict[str, Any]] = []
        # Records per query response; the rest follow through nextRecordsUrl.
        self.batch_size = 2000
        self.user_names: dict[str, str] = {}
        self._cursors: dict[str, list[dict[str, Any]]] = {}
        self._cursor_ids = itertools.count(1)
        self.tasks: list[dict[str, Any]] = []
        # Account Id -> Account fields, with `Owner` as {"Email": ...}.
        self.accounts: dict[str, dict[str, Any]] = {}
        self.contracts: list[dict[str, Any]] = []
        self.entitlements: list[dict[str, Any]] = []
        # Username -> password with the security token appended.
        self.logins: dict[str, str] = {}
        self._session_ids = itertools.count(1)

    def client_session(self) -> requests.Session:
        """Return a requests session that trusts this fake's certificate only."""
        session = requests.Session()
        # REQUESTS_CA_BUNDLE would otherwise win over `verify`.
        session.trust_env = False
        session.verify = str(self.ca_file)
        return session

    def login_session(self, *, domain: str = "login") -> requests.Session:
        """Return a session whose password logins reach this fake.

        simple-salesforce posts a password login to
        `https://<domain>.salesforce.com/services/Soap/u/<version>`; the session
        sends those requests to this fake instead, which returns a new session
        id and its own URL as the server.
        """
        session = self.client_session()
        session.mount(
            f"https://{domain}.salesforce.com/", _RedirectAdapter(target=self.url)
        )
        return session

    def add_login(self, username: str, password: str) -> None:
        """Accept a password login with `password` (password plus token)."""
        self.logins[username] = password

    def expire_session(self) -> None:
        """Make the current session id invalid, as a session timeout does."""
        self.session_id = f"00Dfake!expired{next(self._cursor_ids)}"

    def add_queue(self, name: str, queue_id: str) -> str:
        """Create a queue (a Group of Type Queue); return its Id."""
        self.queues[name] = queue_id
        return queue_id

    def add_case(self, case: dict[str, Any]) -> dict[str, Any]:
        """Store a Case; return it."""
        self.cases[case["Id"]] = case
        return case

    def handle(self, call: RecordedCall) -> FakeResponse:
        """Return the response to one REST request."""
        if call.method == "POST" and call.path.startswith("/services/Soap/u/"):
            return self._login(call)
        if call.headers.get("authorization") != f"Bearer {self.session_id}":
            return salesforce_error(
                401, "INVALID_SESSION_ID", "Session expired or invalid"
            )
        if call.method == "GET" and _QUERY_PATH.match(call.path):
            return self._query(call.param("q") or "")
        more = _MORE_PATH.match(call.path)
        if call.method == "GET" and more is not None:
            return self._page(more.group(1))
        match = _SOBJECT_PATH.match(call.path)
        if match is None:
            return salesforce_error(404, "NOT_FOUND", f"No resource {call.path}")
        sobject, record_id = match.groups()
        if call.method == "PATCH" and sobject == "Case":
            return self._update_case(record_id, json.loads(call.body))
        if call.method == "POST" and sobject == "CaseComment":
            return self._create_comment(json.loads(call.body))
        if call.method == "POST" and sobject == "Task":
            return self._create_task(json.loads(call.body))
        return salesforce_error(405, "METHOD_NOT_ALLOWED", call.method)

    def _login(self, call: RecordedCall) -> FakeResponse:
        body = call.body.decode("utf-8", "replace")
        username = _xml_text(body, "username")
        password = _xml_text(body, "password")
        if username is None or self.logins.get(username) != password:
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
                "<soapenv:Body><soapenv:Fault><faultcode>INVALID_LOGIN</faultcode>"
                "<faultstring>INVALID_LOGIN: Invalid username, password, security "
                "token; or user locked out.</faultstring></soapenv:Fault>"
                "</soapenv:Body></soapenv:Envelope>"
            )
            return FakeResponse(500, fault.encode(), {"Content-Type": "text/xml"})
        self.session_id = f"00Dfake!login{next(self._session_ids)}"
        answer = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse>'
            f"<result><serverUrl>{self.url}/services/Soap/u/59.0/00D000000000001"
            f"</serverUrl><sessionId>{self.session_id}</sessionId>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return FakeResponse(200, answer.encode(), {"Content-Type": "text/xml"})

    def _query(self, soql: str) -> FakeResponse:
        records: list[dict[str, Any]] = []
        if match := _QUERIES["queue"].match(soql):
            queue_id = self.queues.get(_unescape(match.group(1)))
            records = [{"Id": queue_id}] if queue_id else []
        elif match := _QUERIES["case"].match(soql):
            number = _unescape(match.group(1))
            records = [
                {"Id": case["Id"]}
                for case in self.cases.values()
                if case.get("CaseNumber") == number
            ]
        elif match := _QUERIES["comments"].match(soql):
            parent = _unescape(match.group(1))
            records = [
                {"Id": comment["Id"], "CommentBody": comment["CommentBody"]}
                for comment in self.case_comments
                if comment["ParentId"] == parent
            ]
        elif match := _QUERIES["poll"].match(soql):
            return self._poll(match.group(1).split(", "), _moment(match.group(2)))
        elif match := _QUERIES["latest"].match(soql):
            rows = (
                self.cases.values() if match.group(1) == "Case" else self.case_comments
            )
            records = [{"Id": row["Id"]} for row in list(rows)[-1:]]
        elif match := _QUERIES["tasks"].match(soql):
            what = _unescape(match.group(1))
            records = [
                {"Id": task["Id"], "Description": task.get("Description")}
                for task in self.tasks
                if task.get("WhatId") == what
            ]
        else:
            account_records = self._account_query(soql)
            if account_records is None:
                return salesforce_error(
                    400, "MALFORMED_QUERY", f"unexpected SOQL: {soql}"
                )
            records = account_records
        return json_response(
            200, {"totalSize": len(records), "done": True, "records": records}
        )

    def _poll(self, fields: list[str], since: datetime) -> FakeResponse:
        found = sorted(
            (
                case
                for case in self.cases.values()
                if _moment(case["SystemModstamp"]) >= since
            ),
            key=lambda case: (_moment(case["SystemModstamp"]), case["Id"]),
        )
        rows = [self._select(case, fields) for case in found]
        cursor = f"01g{next(self._cursor_ids):015d}"
        self._cursors[cursor] = rows
        return self._page(cursor)

    def _page(self, cursor: str) -> FakeResponse:
        rows = self._cursors.pop(cursor, None)
        if rows is None:
            return salesforce_error(400, "INVALID_QUERY_LOCATOR", "invalid locator")
        page, rest = rows[: self.batch_size], rows[self.batch_size :]
        document: dict[str, Any] = {
            "totalSize": len(rows),
            "done": not rest,
            "records": page,
        }
        if rest:
            following = f"01g{next(self._cursor_ids):015d}"
            self._cursors[following] = rest
            document["nextRecordsUrl"] = f"/services/data/v60.0/query/{following}"
        return json_response(200, document)

    def _select(self, case: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        row: dict[str, Any] = {"attributes": {"type": "Case"}}
        queue_names = {queue_id: name for name, queue_id in self.queues.items()}
        for field in fields:
            if field.startswith("Owner."):
                owner_id = str(case.get("OwnerId") or "")
                name = queue_names.get(owner_id[:15]) or queue_names.get(owner_id)
                owner = row.setdefault("Owner", {"attributes": {"type": "Name"}})
                if field == "Owner.Name":
                    owner["Name"] = name or self.user_names.get(owner_id)
                else:
                    owner["Type"] = "Queue" if name else "User"
            else:
                row[field] = case.get(field)
        return row

    def _update_case(self, case_id: str, fields: dict[str, Any]) -> FakeResponse:
        case = self.cases.get(case_id)
        if case is None:
            return salesforce_error(
                404, "NOT_FOUND", "The requested resource does not exist"
            )
        case.update(fields)
        case["SystemModstamp"] = case["LastModifiedDate"] = sf_time(datetime.now(UTC))
        case["LastModifiedById"] = API_USER_ID
        return FakeResponse(204)

    def _create_comment(self, fields: dict[str, Any]) -> FakeResponse:
        comment_id = f"00a{len(self.case_comments):015d}"
        self.case_comments.append({"Id": comment_id, **fields})
        return json_response(201, {"id": comment_id, "success": True, "errors": []})

    def _account_query(self, soql: str) -> list[dict[str, Any]] | None:
        if match := _QUERIES["account"].match(soql):
            account = self.accounts.get(_unescape(match.group(3)))
            return [account] if account else []
        if match := _QUERIES["contract"].match(soql):
            account_id = _unescape(match.group(2))
            rows = [row for row in self.contracts if row["AccountId"] == account_id]
            rows.sort(key=lambda row: str(row.get("EndDate")), reverse=True)
            return rows[:1]
        if match := _QUERIES["entitlements"].match(soql):
            account_id = _unescape(match.group(1))
            return [
                row
                for row in self.entitlements
                if row["AccountId"] == account_id and row.get("Status") == "Active"
            ]
        return None

    def _create_task(self, fields: dict[str, Any]) -> FakeResponse:
        task_id = f"00T{len(self.tasks):015d}"
        self.tasks.append({"Id": task_id, **fields})
        return json_response(201, {"id": task_id, "success": True, "errors": []})


def _xml_text(document: str, tag: str) -> str | None:
    """Return the text of the first `<tag>` element of a small XML document."""
    match = re.search(rf"<(?:\w+:)?{tag}>([^<]*)</(?:\w+:)?{tag}>", document)
    return None if match is None else html.unescape(match.group(1))


class _RedirectAdapter(requests.adapters.HTTPAdapter):
    """Send each request to `target` (scheme, host and port), keeping its path."""

    def __init__(self, *, target: str) -> None:
        super().__init__()
        self._target = target.rstrip("/")

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url)
        request.url = (
            self._target + parts.path + (f"?{parts.query}" if parts.query else "")
        )
        return super().send(request, *args, **kwargs)
