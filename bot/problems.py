"""`Problem`: one error or warning, located in a file of the repository.

Config, setters, policies and templates all report through this one type, and
it travels unchanged to check-run annotations, the CLI's text and ``--json``.
Nothing downstream parses a message back: the location is data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    #: Worth knowing, nothing to fix: e.g. a Flux manifest's cluster-only field.
    NOTICE = "notice"


@dataclass(frozen=True)
class Problem:
    """``path`` is relative to the repository root; ``line`` and ``column`` are 1-based.

    ``line`` 0 means the problem is about the file as a whole (no line to point at).
    """

    path: str
    line: int
    column: int
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.path}: {self.message}"
        if self.column <= 0:
            return f"{self.path}:{self.line}: {self.message}"
        return f"{self.path}:{self.line}:{self.column}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "severity": self.severity.value,
        }


def error(path: str, line: int, column: int, message: str) -> Problem:
    return Problem(path, line, column, message, Severity.ERROR)


def warning(path: str, line: int, column: int, message: str) -> Problem:
    return Problem(path, line, column, message, Severity.WARNING)


def notice(path: str, line: int, column: int, message: str) -> Problem:
    return Problem(path, line, column, message, Severity.NOTICE)
