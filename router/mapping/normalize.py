"""Turn a source system's record into the canonical Ticket through its mapping.

A mapping is compiled once into a `RecordNormalizer` (split paths, resolved transforms,
value maps ready for lookup), so that normalizing a record does no YAML, regex or
schema work beyond validating the Ticket itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from router.mapping.errors import NO_VALUE, NormalizationError
from router.mapping.schemas import (
    DATETIME_FIELDS,
    INT_FIELD_RANGES,
    LIST_FIELDS,
    FieldSpec,
    SystemMapping,
    ValueMap,
)
from router.mapping.transforms import TRANSFORMS
from router.schemas import Ticket

logger = logging.getLogger(__name__)

_TEXT_FIELDS: Final = frozenset({"title", "description"})
_MISSING: Final = object()


def _kind_of(field: str) -> str:
    if field in _TEXT_FIELDS:
        return "text"
    if field in INT_FIELD_RANGES:
        return "int"
    if field in DATETIME_FIELDS:
        return "datetime"
    if field in LIST_FIELDS:
        return "list"
    return "optional_text"


def _read_path(record: Any, parts: tuple[str, ...]) -> Any:
    current = record
    for part in parts:
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit():
            index = int(part)
            current = current[index] if index < len(current) else None
        else:
            return None
        if current is None:
            return None
    return current


@dataclass(frozen=True, slots=True)
class _FieldReader:
    """One compiled entry of `fields`, with the value map of the same field."""

    source: str
    system: str
    name: str
    kind: str
    paths: tuple[tuple[str, ...], ...]
    path_text: str
    unwrap_order: tuple[str, str]
    transform_name: str | None
    transform: Callable[[Any], Any] | None
    values: Mapping[str, Any] | None
    ignore_case: bool
    default: Any
    keep_unknown: bool
    expected_text: str

    def read(self, record: Mapping[str, Any]) -> Any:
        """Return this field's canonical value in `record`, or None when it is empty."""
        value: Any = None
        for parts in self.paths:
            value = _read_path(record, parts)
            if isinstance(value, Mapping) and (
                "value" in value or "display_value" in value
            ):
                value = self._unwrap(value)
            if value is not None and value != "":
                break
        else:
            return None

        if self.transform is not None:
            value = self._transform(self.transform, value)
        if self.values is not None:
            value = self._map_value(self.values, value)
        return self._coerce(value)

    def _unwrap(self, wrapper: Mapping[str, Any]) -> Any:
        first, second = self.unwrap_order
        inner = wrapper.get(first)
        if inner is None or inner == "":
            inner = wrapper.get(second)
        return inner

    def _transform(self, transform: Callable[[Any], Any], value: Any) -> Any:
        try:
            return transform(value)
        except (ValueError, TypeError) as exc:
            raise self._error(
                f"{self.source}: {self.name} value {value!r} at {self.path_text} is "
                f"invalid for transform {self.transform_name}: {exc}.",
                value,
            ) from None

    def _map_value(self, values: Mapping[str, Any], value: Any) -> Any:
        key = value if isinstance(value, str) else str(value)
        if self.ignore_case:
            key = key.casefold()
        mapped = values.get(key, _MISSING)
        if mapped is not _MISSING:
            return mapped
        if self.default is not None:
            return self.default
        if self.keep_unknown:
            return value
        raise self._error(
            f"{self.source}: {self.name} value {value!r} at values.{self.name} is "
            f"unknown; expected one of {self.expected_text}. Add it to "
            f"values.{self.name}.map or set values.{self.name}.default.",
            value,
        )

    def _coerce(self, value: Any) -> Any:
        if self.kind in ("text", "optional_text"):
            if isinstance(value, str):
                return value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return str(value)
            raise self._error(
                f"{self.source}: {self.name} value at {self.path_text} is a "
                f"{type(value).__name__}, expected text; point fields.{self.name} at "
                "a text field or add a transform.",
                value,
            )
        if self.kind == "list":
            if isinstance(value, str):
                return [value]
            if isinstance(value, list):
                return [str(item) for item in value if item is not None and item != ""]
            raise self._error(
                f"{self.source}: {self.name} value at {self.path_text} is a "
                f"{type(value).__name__}, expected a list of strings.",
                value,
            )
        return value

    def _error(self, message: str, value: Any) -> NormalizationError:
        return NormalizationError(
            message, system=self.system, field=self.name, value=value
        )


def _compile_field(
    mapping: SystemMapping, name: str, spec: FieldSpec, value_map: ValueMap | None
) -> _FieldReader:
    values: dict[str, Any] | None = None
    expected_text = ""
    if value_map is not None:
        values = dict(value_map.map)
        if value_map.ignore_case:
            values = {key.casefold(): target for key, target in values.items()}
        expected_text = ", ".join(value_map.map)

    unwrap_order = (
        ("display_value", "value")
        if spec.reference and spec.prefer == "display_value"
        else ("value", "display_value")
    )
    return _FieldReader(
        source=mapping.source,
        system=mapping.system,
        name=name,
        kind=_kind_of(name),
        paths=tuple(tuple(path.split(".")) for path in spec.path),
        path_text=" or ".join(spec.path),
        unwrap_order=unwrap_order,
        transform_name=spec.transform,
        transform=TRANSFORMS[spec.transform] if spec.transform else None,
        values=values,
        ignore_case=value_map.ignore_case if value_map else False,
        default=value_map.default if value_map else None,
        keep_unknown=value_map.keep_unknown if value_map else False,
        expected_text=expected_text,
    )


class RecordNormalizer:
    """A system mapping compiled for fast normalization of many records."""

    def __init__(self, mapping: SystemMapping) -> None:
        self.system = mapping.system
        self.source = mapping.source
        self._readers = tuple(
            _compile_field(mapping, name, spec, mapping.values.get(name))
            for name, spec in mapping.fields.items()
        )

    def normalize(self, record: Mapping[str, Any]) -> Ticket:
        """Return the Ticket for one record of this system.

        Raises:
            NormalizationError: a value is missing from a value map, fails its
                transform, or does not fit the Ticket field it is mapped to.
        """
        data: dict[str, Any] = {"source_system": self.system, "raw": dict(record)}
        for reader in self._readers:
            value = reader.read(record)
            if value is not None:
                data[reader.name] = value

        if "external_id" not in data:
            raise NormalizationError(
                f"{self.source}: the record has no external_id; expected a value at "
                f"{self._path_of('external_id')}.",
                system=self.system,
                field="external_id",
            )
        try:
            return Ticket.model_validate(data)
        except ValidationError as exc:
            raise self._ticket_error(exc, data) from None

    def _path_of(self, field: str) -> str:
        for reader in self._readers:
            if reader.name == field:
                return reader.path_text
        return "(no entry in fields)"

    def _ticket_error(
        self, exc: ValidationError, data: Mapping[str, Any]
    ) -> NormalizationError:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        value = data.get(field, NO_VALUE)
        message = (
            f"{self.source}: {field} value {value!r} from {self._path_of(field)} does "
            f"not fit the Ticket: {first['msg']}. Fix values.{field} or "
            f"fields.{field}."
        )
        return NormalizationError(message, system=self.system, field=field, value=value)


def normalizer_for(mapping: SystemMapping) -> RecordNormalizer:
    """Return the compiled normalizer of `mapping`, compiling it on first use."""
    normalizer = mapping._normalizer
    if normalizer is None:
        normalizer = RecordNormalizer(mapping)
        mapping._normalizer = normalizer
    return normalizer  # type: ignore[no-any-return]


def normalize_record(
    system: str, record: Mapping[str, Any], *, mapping: SystemMapping
) -> Ticket:
    """Turn one record of `system` into a Ticket, keeping the record in `raw`.

    Args:
        system: the record's source system; it must match `mapping.system`.
        record: the record as the system's API returns it (a Table API incident,
            a Jira issue, a Salesforce Case).
        mapping: the system's field and value maps.

    Raises:
        ValueError: `system` is not the system of `mapping`.
        NormalizationError: the record does not fit the mapping.
    """
    if system != mapping.system:
        raise ValueError(
            f"cannot normalize a {system!r} record with the {mapping.system!r} "
            f"mapping from {mapping.source}; pass the mapping of {system!r}."
        )
    return normalizer_for(mapping).normalize(record)
