"""Problems found in mapping files, and the errors that carry them."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any, Final


class _NoValue:
    """Marker for a problem that has no offending value, such as a missing file."""

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Final = _NoValue()

_value_repr = reprlib.Repr()
_value_repr.maxstring = 80
_value_repr.maxother = 80
_value_repr.maxdict = 6
_value_repr.maxlist = 6


@dataclass(frozen=True, slots=True)
class MappingProblem:
    """One problem in one mapping file.

    `file` is shown relative to the folder's parent (`mappings/jira.yaml`), `key_path`
    points into the file (`values.priority.map.Urgent`, `intents[3].patterns[0]`) and is
    empty for problems with the whole file. `value` is the offending value, or
    `NO_VALUE` when there is none.
    """

    file: str
    key_path: str
    value: Any
    message: str

    def __str__(self) -> str:
        parts = [self.file]
        if self.key_path:
            parts.append(self.key_path)
        parts.append(self.message)
        line = ": ".join(parts)
        if self.value is not NO_VALUE:
            line += f" (value: {_value_repr.repr(self.value)})"
        return line


class MappingError(ValueError):
    """Mapping files that failed to load, with every problem found in them."""

    def __init__(self, problems: list[MappingProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(str(problem) for problem in self.problems)
        super().__init__(f"{count} problem(s) in the mapping files:\n{lines}")


class NormalizationError(ValueError):
    """A record that its system's mapping cannot turn into a Ticket."""

    def __init__(
        self, message: str, *, system: str, field: str, value: Any = NO_VALUE
    ) -> None:
        super().__init__(message)
        self.system = system
        self.field = field
        self.value = value
