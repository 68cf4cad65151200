"""Shared connector parts: request checks, header filtering, error mapping.

Webhook checks run in a fixed order: authentication first (signature, token or
sender), then the content type, then parsing. Each failure is a `WebhookError` whose
message names the header, setting or position at fault, and never contains a secret
or the request body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Final, TypeVar

from router.intake.plugin import (
    DEFAULT_INSTANCE,
    DeliveryAction,
    PermanentDeliveryError,
    PollError,
    RetryableDeliveryError,
    WebhookError,
    WebhookRequest,
)
from router.mapping import MappingSet, ResolverGroup, load_mappings
from router.schemas import Ticket

logger = logging.getLogger(__name__)

# Headers that carry credentials or signatures; they are never stored with an event.
SENSITIVE_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-opsroute-signature",
        "x-hub-signature",
        "x-hub-signature-256",
    }
)
SHA256_PREFIX: Final = "sha256="
# Seconds before a failed lookup of the triage group or queue is tried again.
TRIAGE_RETRY_SECONDS: Final = 300.0
# How the vendors write their own names, for messages.
VENDOR_NAMES: Final = {
    "servicenow": "ServiceNow",
    "jira": "Jira",
    "salesforce": "Salesforce",
}

ResultT = TypeVar("ResultT")


def utc_now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


def filter_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the headers worth storing with an event, without credentials."""
    return {
        name.lower(): value
        for name, value in headers.items()
        if name.lower() not in SENSITIVE_HEADERS
    }


def verify_hmac_sha256(
    *, body: bytes, signature: str, secret: str, header: str, system: str
) -> None:
    """Check a `sha256=<hex>` HMAC-SHA256 signature of `body` in constant time.

    Raises:
        WebhookError: 401 when the signature is malformed or does not match.
    """
    if not signature.startswith(SHA256_PREFIX):
        raise WebhookError(
            f"{system} webhook rejected: header {header} must look like "
            "sha256=<hex HMAC-SHA256 of the raw body>; check the webhook's "
            "signature settings.",
            status_code=401,
        )
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    received = signature[len(SHA256_PREFIX) :].strip().lower()
    if not hmac.compare_digest(expected.encode(), received.encode()):
        raise WebhookError(
            f"{system} webhook rejected: the signature in {header} does not match "
            "the body; check that the sender uses the same secret and signs the raw "
            "body unchanged.",
            status_code=401,
        )


def verify_bearer_token(*, authorization: str, secret: str, system: str) -> None:
    """Check an `Authorization: Bearer <secret>` header in constant time.

    Raises:
        WebhookError: 401 when the header is not a Bearer token or the token differs.
    """
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise WebhookError(
            f"{system} webhook rejected: the Authorization header must be "
            "'Bearer <webhook secret>'.",
            status_code=401,
        )
    if not hmac.compare_digest(token.strip().encode(), secret.encode()):
        raise WebhookError(
            f"{system} webhook rejected: the Bearer token in the Authorization "
            "header is wrong; check the secret configured at the sender.",
            status_code=401,
        )


def media_type(content_type: str) -> str:
    """Return the media type of a Content-Type value, without its parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def require_content_type(
    request: WebhookRequest, *, expected: tuple[str, ...], system: str
) -> None:
    """Check that the request's media type is one of `expected`.

    Raises:
        WebhookError: 415 naming the expected type.
    """
    received = media_type(request.content_type)
    if received not in expected:
        raise WebhookError(
            f"{system} webhook rejected: Content-Type {received or '(none)'!r} is "
            f"not supported; send {expected[0]}.",
            status_code=415,
        )


def parse_json_object(body: bytes, *, system: str) -> dict[str, Any]:
    """Parse a JSON object from a webhook body.

    Raises:
        WebhookError: 400 with the parser's reason and position, or when the
            document is not an object.
    """
    try:
        document = json.loads(body)
    except UnicodeDecodeError as exc:
        raise WebhookError(
            f"{system} webhook body is not UTF-8 text: invalid byte at position "
            f"{exc.start}; send UTF-8 encoded JSON.",
            status_code=400,
        ) from None
    except json.JSONDecodeError as exc:
        raise WebhookError(
            f"{system} webhook body is invalid JSON: {exc.msg} (line {exc.lineno}, "
            f"column {exc.colno}, position {exc.pos} of {len(body)} bytes); send the "
            "complete JSON document.",
            status_code=400,
        ) from None
    if not isinstance(document, dict):
        raise WebhookError(
            f"{system} webhook body is a JSON {type(document).__name__}, expected an "
            "object of the record's fields.",
            status_code=400,
        )
    return document


def parse_retry_after(value: str | None) -> float | None:
    """Return the delay in seconds of a Retry-After header (seconds or HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - utc_now()).total_seconds())


class HttpRetryableError(RetryableDeliveryError):
    """A retryable delivery error caused by an HTTP status (429 or 5xx)."""

    def __init__(
        self, message: str, *, status_code: int, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status_code = status_code


class HttpPermanentError(PermanentDeliveryError):
    """A permanent delivery error caused by an HTTP status (4xx other than 429)."""

    def __init__(self, message: str, *, status_code: int, detail: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail


def http_delivery_error(
    *, status: int, what: str, detail: str = "", retry_after: str | None = None
) -> RetryableDeliveryError | PermanentDeliveryError:
    """Return the delivery error for an HTTP status: 429 and 5xx can be retried."""
    suffix = f": {detail}" if detail else ""
    if status == 429 or status >= 500:
        return HttpRetryableError(
            f"{what} failed with HTTP {status}{suffix}; it will be retried.",
            status_code=status,
            retry_after=parse_retry_after(retry_after),
        )
    return HttpPermanentError(
        f"{what} failed with HTTP {status}{suffix}; fix the cause, then re-queue the "
        "action with `opsroute outbox retry ID`.",
        status_code=status,
        detail=detail,
    )


def http_problem(
    status: int, *, system: str, credentials: str, detail: str = ""
) -> str:
    """Return a plain description of an HTTP failure status for polls and checks.

    `credentials` names the settings to fix on a 401, such as
    "OPSROUTE_JIRA_USER and OPSROUTE_JIRA_API_TOKEN".
    """
    suffix = f" ({detail})" if detail else ""
    if status == 401:
        return (
            f"{system} rejected the credentials (HTTP 401){suffix}: the user name "
            f"or password is wrong; check {credentials}."
        )
    if status == 403:
        return (
            f"{system} denied access (HTTP 403){suffix}: the API user lacks a role "
            "or permission for this resource; ask an admin to grant it."
        )
    if status == 404:
        return (
            f"{system} has no such resource (HTTP 404){suffix}: check the URL and "
            "the table, project or object name in the settings."
        )
    if status == 429:
        return f"{system} is rate limiting requests (HTTP 429){suffix}."
    if status >= 500:
        return f"{system} failed with HTTP {status}{suffix}; it may be down."
    return f"{system} answered HTTP {status}{suffix}."


@dataclass(frozen=True)
class PollRetryPolicy:
    """Retries of one poll request after 429, 503 or another 5xx.

    A Retry-After longer than `max_sleep_seconds` is not slept in the poll: the
    poll stops and the scheduler polls again once the delay has passed.
    """

    attempts: int = 3
    base_seconds: float = 1.0
    max_sleep_seconds: float = 10.0


def call_with_retries(
    call: Callable[[], ResultT],
    *,
    what: str,
    describe: Callable[[int, str], str],
    policy: PollRetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> ResultT:
    """Run one poll request, retrying rate limits and server errors with backoff.

    The delay is the vendor's Retry-After when it sent one, else exponential from
    `policy.base_seconds` with full jitter.

    Raises:
        PollError: the request kept failing, or failed in a way no retry fixes;
            the message comes from `describe(status, detail)` where there is a
            status.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except RetryableDeliveryError as error:
            status = getattr(error, "status_code", 0)
            reason = describe(status, "") if status else str(error)
            delay = error.retry_after
            if delay is None:
                delay = random.uniform(0, policy.base_seconds * 2 ** (attempt - 1))
            if attempt == policy.attempts or delay > policy.max_sleep_seconds:
                raise PollError(
                    f"{what} failed after {attempt} attempts: {reason}",
                    retry_after=error.retry_after,
                ) from None
            logger.warning(
                "%s failed (attempt %d of %d), retrying in %.1f s: %s",
                what,
                attempt,
                policy.attempts,
                delay,
                reason,
            )
            sleep(delay)
        except HttpPermanentError as error:
            raise PollError(
                f"{what} failed: {describe(error.status_code, error.detail)}"
            ) from None
        except PermanentDeliveryError as error:
            raise PollError(f"{what} failed: {error}") from None
    raise AssertionError("unreachable: the last attempt returns or raises")


def note_text(action: DeliveryAction, *, target: str | None, noun: str) -> str:
    """Return the note or comment of a write-back, ending with the action's marker.

    The text is the payload's `note`, else its one-line `reason`, else a line
    naming the target. `noun` is the vendor's word for the record (ticket, case).
    """
    payload = action.payload
    text = str(payload.get("note") or payload.get("reason") or "").strip()
    if not text:
        text = (
            f"opsroute assigned this {noun} to {target}."
            if target
            else f"opsroute reviewed this {noun}."
        )
    return f"{text}\n[{action.marker}]"


def person_assignee(payload: Mapping[str, Any]) -> str | None:
    """Return the account to assign the record to, or None if none is requested.

    A write-back requests it with `assign_to_person: true`, and `on_behalf_of.user`
    is the person's account in the record's system (from the people file).
    """
    if payload.get("assign_to_person") is not True:
        return None
    person = payload.get("on_behalf_of")
    user = person.get("user") if isinstance(person, Mapping) else None
    return str(user) if user else None


class BaseConnector:
    """Shared state of a connector instance: its names and its mapping files."""

    system: ClassVar[str] = ""
    # The settings that write-back needs, as field names of `settings`.
    credential_fields: ClassVar[tuple[str, ...]] = ()
    settings: Any

    def __init__(
        self, *, instance: str = DEFAULT_INSTANCE, mappings: MappingSet | None = None
    ) -> None:
        self.instance = instance
        self._mappings = mappings

    def webhook_secret_setting(self) -> str | None:
        """Return the name of the webhook secret setting when it is unset."""
        if self.settings.webhook_secret is None:
            return str(self.settings.setting_name("webhook_secret", self.instance))
        return None

    def missing_settings(self) -> list[str]:
        """Return the unset settings that write-back needs."""
        return [
            str(self.settings.setting_name(field, self.instance))
            for field in self.credential_fields
            if not getattr(self.settings, field)
        ]

    def can_write(self) -> bool:
        """Return whether the API credentials are configured."""
        return not self.missing_settings()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(instance={self.instance!r})"

    @property
    def mappings(self) -> MappingSet:
        """Return the mapping files, loading the configured ones on first use."""
        if self._mappings is None:
            self._mappings = load_mappings()
        return self._mappings

    def to_ticket(self, record: Mapping[str, Any], *, mappings: MappingSet) -> Ticket:
        """Turn a stored record into a Ticket through the system's mapping."""
        return mappings.normalize(self.system, record)

    def resolver_group(self, name: str) -> ResolverGroup:
        """Return the taxonomy's resolver group `name`.

        Raises:
            PermanentDeliveryError: the taxonomy has no such group.
        """
        for group in self.mappings.taxonomy.resolver_groups:
            if group.name == name:
                return group
        raise PermanentDeliveryError(
            f"resolver group {name!r} is not in taxonomy.yaml of "
            f"{self.mappings.directory}; add it there or fix the decision's group."
        )

    def check_deliverable(self, action: DeliveryAction) -> None:
        """Check that this connector can deliver the action now.

        Raises:
            PermanentDeliveryError: the action is neither a write_back nor a task.
            RetryableDeliveryError: the API credentials are not configured yet, so
                the action waits in the outbox.
        """
        if action.kind not in ("write_back", "task"):
            vendor = VENDOR_NAMES.get(self.system, self.system)
            raise PermanentDeliveryError(
                f"{self.describe(action)}: the {vendor} connector delivers "
                f"write_back and task actions only, not {action.kind!r}."
            )
        if not self.can_write():
            raise RetryableDeliveryError(
                f"{self.describe(action)} is waiting for credentials: set "
                f"{', '.join(self.missing_settings())}."
            )

    def resolve_triage(self, name: str, lookup: Callable[[str], object]) -> None:
        """Look up the triage group or queue `name` (cached by `lookup` itself).

        A failed lookup is logged and tried again only after
        TRIAGE_RETRY_SECONDS, because planning calls this for every event.
        """
        now = time.monotonic()
        tried_at = getattr(self, "_triage_tried_at", -TRIAGE_RETRY_SECONDS)
        if now - tried_at < TRIAGE_RETRY_SECONDS:
            return
        self._triage_tried_at = now
        try:
            lookup(name)
        except (PermanentDeliveryError, RetryableDeliveryError) as error:
            vendor = VENDOR_NAMES.get(self.system, self.system)
            logger.warning(
                "%s triage %r not resolved, so records are matched to it by name "
                "only: %s",
                vendor,
                name,
                error,
            )

    def describe(self, action: DeliveryAction) -> str:
        """Return a short description of an action for messages and logs."""
        return f"{self.system} write-back of action {action.id} for {action.ticket_key}"
