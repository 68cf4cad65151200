"""Input checks shared by the inbox and the outbox."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import String, Table


def check_lengths(
    table: Table, item: object, names: Sequence[str], *, what: str
) -> None:
    """Raise ValueError if a string field of `item` is longer than its column.

    PostgreSQL rejects such a value anyway, but SQLite stores it whole, so the check
    keeps the two backends alike.
    """
    for name in names:
        value = getattr(item, name)
        column_type = table.c[name].type
        if value is None or not isinstance(column_type, String):
            continue
        limit = column_type.length
        if limit is not None and len(value) > limit:
            raise ValueError(
                f"{what} field {name} is {len(value)} characters long "
                f"({value[:40]!r}...), over the column's {limit}; shorten it."
            )
