"""A generic HTTP enricher configured in `enrichment.yaml`.

Options:

- `url`: a template such as `https://erp.example.com/accounts/{account}`; the
  placeholders are Ticket fields or `context.<path>`, URL-encoded when filled in.
  A ticket that lacks one of them is skipped.
- `auth` (optional): `{scheme: bearer, env: VAR}`, `{scheme: basic, user_env: VAR,
  password_env: VAR}` or `{scheme: header, header: X-Api-Key, env: VAR}`. Secrets
  are read from the environment at each call and never logged.
- `fields`: context path -> JSON path in the response, such as
  `finance_hold: $.billing.hold` or `open_invoices: $.invoices[0].count`.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import quote

import requests
from sqlalchemy.orm import Session, sessionmaker

from router.enrichment.base import EnrichmentError, build_context
from router.enrichment.schemas import EnricherSpec
from router.schemas import Ticket

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.]*)\}")
_PATH_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]")
AUTH_SCHEMES = ("bearer", "basic", "header")


def read_json_path(document: Any, path: str) -> Any:
    """Return the value at a JSON path such as `$.a.b[0].c`, or None if absent.

    Raises:
        ValueError: the path does not start with `$` or has an unreadable step.
    """
    if not path.startswith("$"):
        raise ValueError(f"JSON path {path!r} must start with '$', as in '$.a.b'")
    rest = path[1:]
    value = document
    position = 0
    while position < len(rest):
        step = _PATH_STEP.match(rest, position)
        if step is None:
            raise ValueError(
                f"JSON path {path!r} cannot be read at {rest[position:]!r}; use "
                ".name and [index] steps"
            )
        name, index = step.groups()
        if name is not None:
            value = value.get(name) if isinstance(value, dict) else None
        else:
            items = value if isinstance(value, list) else []
            value = items[int(index)] if int(index) < len(items) else None
        if value is None:
            return None
        position = step.end()
    return value


class HttpEnricher:
    """Fetch one JSON document per ticket and copy fields out of it."""

    def __init__(self, spec: EnricherSpec) -> None:
        options = spec.options
        self.name = spec.name
        url = options.get("url")
        if not isinstance(url, str) or not url:
            raise ValueError(
                f"enricher {spec.name!r}: options.url is missing; set a URL template "
                "such as https://erp.example.com/accounts/{account}"
            )
        fields = options.get("fields")
        if not isinstance(fields, dict) or not fields:
            raise ValueError(
                f"enricher {spec.name!r}: options.fields is missing; map context "
                "paths to JSON paths, as in finance_hold: $.billing.hold"
            )
        for path in fields.values():
            read_json_path({}, str(path))
        self.url = url
        self.field_paths = {str(key): str(value) for key, value in fields.items()}
        self.fields = tuple(self.field_paths)
        self.auth = dict(options.get("auth") or {})
        scheme = self.auth.get("scheme")
        if scheme is not None and scheme not in AUTH_SCHEMES:
            raise ValueError(
                f"enricher {spec.name!r}: auth scheme {scheme!r} is unknown; use "
                f"one of {', '.join(AUTH_SCHEMES)}"
            )
        self._session = requests.Session()
        self._session.trust_env = False

    def cache_key(self, ticket: Ticket) -> str | None:
        """Return the filled-in URL, or None when the ticket lacks a placeholder."""
        return self._url_for(ticket)

    def fetch(self, ticket: Ticket, *, timeout: float) -> dict[str, Any]:
        """GET the URL and return the configured fields of the JSON response."""
        url = self._url_for(ticket)
        if url is None:
            return {}
        headers, basic = self._credentials()
        try:
            response = self._session.get(
                url, headers=headers, auth=basic, timeout=timeout
            )
        except requests.Timeout:
            raise EnrichmentError(
                f"{self.name}: request timed out after {timeout:.2f} s", retryable=True
            ) from None
        except requests.ConnectionError as error:
            raise EnrichmentError(
                f"{self.name}: connection failed ({type(error).__name__})",
                retryable=True,
            ) from None
        if response.status_code >= 400:
            raise EnrichmentError(
                f"{self.name}: HTTP {response.status_code}",
                retryable=response.status_code == 429 or response.status_code >= 500,
            )
        try:
            document = response.json()
        except ValueError:
            raise EnrichmentError(f"{self.name}: response is not JSON") from None
        values = {
            path: read_json_path(document, json_path)
            for path, json_path in self.field_paths.items()
        }
        return build_context(values)

    def _url_for(self, ticket: Ticket) -> str | None:
        missing = False

        def fill(match: re.Match[str]) -> str:
            nonlocal missing
            value = _ticket_value(ticket, match.group(1))
            if value in (None, ""):
                missing = True
                return ""
            return quote(str(value), safe="")

        url = _PLACEHOLDER.sub(fill, self.url)
        return None if missing else url

    def _credentials(
        self,
    ) -> tuple[dict[str, str], tuple[str, str] | None]:
        scheme = self.auth.get("scheme")
        if scheme is None:
            return {}, None
        if scheme == "basic":
            user = self._secret("user_env")
            password = self._secret("password_env")
            return {}, (user, password)
        token = self._secret("env")
        if scheme == "bearer":
            return {"Authorization": f"Bearer {token}"}, None
        return {str(self.auth.get("header") or "X-Api-Key"): token}, None

    def _secret(self, option: str) -> str:
        variable = self.auth.get(option)
        value = os.environ.get(str(variable)) if variable else None
        if not value:
            raise EnrichmentError(
                f"{self.name}: environment variable {variable or '(unset)'} for "
                f"auth.{option} is not set; set it to the API credential"
            )
        return value


def _ticket_value(ticket: Ticket, path: str) -> Any:
    root, _, rest = path.partition(".")
    if root != "context":
        return getattr(ticket, root, None)
    value: Any = ticket.context
    for part in rest.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def create_enricher(
    spec: EnricherSpec, *, session_factory: sessionmaker[Session] | None = None
) -> HttpEnricher:
    """Build an HTTP enricher from its configuration."""
    return HttpEnricher(spec)
