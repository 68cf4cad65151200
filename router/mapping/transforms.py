"""Value transforms that a field map can name with `transform:`.

Each transform takes the value found in the record (never None or "") and returns the
converted value, or raises ValueError with a message that names the expected format.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

# Jira ADF nodes whose children form a block of their own, so they end with a newline.
_ADF_BLOCKS: Final = frozenset(
    {
        "paragraph",
        "heading",
        "blockquote",
        "codeBlock",
        "listItem",
        "panel",
        "tableRow",
        "rule",
        "mediaSingle",
    }
)
_ID18_SUFFIX_CHARS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def adf_text(value: Any) -> str:
    """Flatten a Jira v3 ADF document to plain text; pass a v2 string through."""
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping) or value.get("type") != "doc":
        raise ValueError("expected an ADF document ({'type': 'doc', ...}) or a string")

    parts: list[str] = []
    _collect_adf_text(value, parts)
    lines = "".join(parts).splitlines()
    return "\n".join(line.rstrip() for line in lines).strip()


def _collect_adf_text(node: Mapping[str, Any], parts: list[str]) -> None:
    node_type = node.get("type")
    if node_type == "text":
        parts.append(str(node.get("text", "")))
        return
    if node_type == "hardBreak":
        parts.append("\n")
        return
    if node_type in ("mention", "emoji", "status", "date"):
        attrs = node.get("attrs") or {}
        parts.append(str(attrs.get("text") or attrs.get("shortName") or ""))
        return
    if node_type in ("inlineCard", "blockCard"):
        parts.append(str((node.get("attrs") or {}).get("url", "")))
        return

    for child in node.get("content") or ():
        if isinstance(child, Mapping):
            _collect_adf_text(child, parts)
    if node_type in _ADF_BLOCKS:
        parts.append("\n")
    elif node_type in ("tableCell", "tableHeader"):
        parts.append("\t")


def sn_datetime(value: Any) -> datetime:
    """Parse a ServiceNow `YYYY-MM-DD HH:MM:SS` value, which the API gives in UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value)
    if len(text) != 19 or text[10] != " ":
        raise ValueError("expected a ServiceNow date 'YYYY-MM-DD HH:MM:SS'")
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def offset_datetime(value: Any) -> datetime:
    """Parse an ISO 8601 value with an offset such as `+0300`, `+00:00` or `Z`."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError(
                "expected an ISO 8601 date with an offset, such as "
                "'2019-06-13T12:51:49.131+0300'"
            ) from None
    if parsed.tzinfo is None:
        raise ValueError("the date has no UTC offset; expected one such as '+0000'")
    return parsed


def to_int(value: Any) -> int:
    """Convert a number or a numeric string (`"3"`) to an int."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError("expected a whole number") from None


def salesforce_id18(value: Any) -> str:
    """Return the 18-character form of a Salesforce Id given in 15 or 18 characters."""
    text = str(value)
    if not text.isascii() or not text.isalnum() or len(text) not in (15, 18):
        raise ValueError("expected a Salesforce Id of 15 or 18 letters and digits")
    if len(text) == 18:
        return text
    return text + salesforce_id_suffix(text)


def salesforce_id_suffix(id15: str) -> str:
    """Return the 3 checksum characters that make a 15-character Id case-insensitive.

    Each character of the suffix encodes which of 5 Id characters are upper case.
    """
    suffix = []
    for start in (0, 5, 10):
        bits = 0
        for position, char in enumerate(id15[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix.append(_ID18_SUFFIX_CHARS[bits])
    return "".join(suffix)


TRANSFORMS: Final[Mapping[str, Callable[[Any], Any]]] = {
    "adf_text": adf_text,
    "sn_datetime": sn_datetime,
    "jira_datetime": offset_datetime,
    "sf_datetime": offset_datetime,
    "int": to_int,
    "salesforce_id18": salesforce_id18,
}
