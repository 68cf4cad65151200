"""Map simple-salesforce API errors to retryable and permanent delivery errors."""

from __future__ import annotations

from typing import Final

from simple_salesforce.exceptions import SalesforceError, SalesforceRefusedRequest

from connectors.base import http_delivery_error
from router.intake.plugin import PermanentDeliveryError, RetryableDeliveryError

# Salesforce's error code for an org over its daily API request limit, a pause
# rather than a refusal.
REQUEST_LIMIT_EXCEEDED: Final = "REQUEST_LIMIT_EXCEEDED"
# Seconds to wait after REQUEST_LIMIT_EXCEEDED. The limit is counted over a
# rolling 24 hours, so this is a guess at when some capacity is back.
REQUEST_LIMIT_PAUSE_SECONDS: Final = 900.0
# Error texts from the API are cut to this many characters in our messages.
_DETAIL_CHARS: Final = 200


def delivery_error(
    exc: SalesforceError, *, what: str
) -> RetryableDeliveryError | PermanentDeliveryError:
    """Return the delivery error for a simple-salesforce API error."""
    if isinstance(exc, SalesforceRefusedRequest) and (
        REQUEST_LIMIT_EXCEEDED in _error_codes(exc)
    ):
        return RetryableDeliveryError(
            f"{what}: the org is over its API request limit "
            f"({REQUEST_LIMIT_EXCEEDED}); it will be retried later.",
            retry_after=REQUEST_LIMIT_PAUSE_SECONDS,
        )
    return http_delivery_error(status=exc.status, what=what, detail=_error_detail(exc))


def _error_codes(exc: SalesforceError) -> list[str]:
    content = exc.content
    if isinstance(content, list):
        return [
            str(item.get("errorCode", "")) for item in content if isinstance(item, dict)
        ]
    return []


def _error_detail(exc: SalesforceError) -> str:
    content = exc.content
    if isinstance(content, list):
        parts = [
            f"{item.get('errorCode', '')}: {item.get('message', '')}"
            for item in content
            if isinstance(item, dict)
        ]
        return "; ".join(parts)[:_DETAIL_CHARS]
    return str(content)[:_DETAIL_CHARS]
