"""Errors a user can act on.

Every error raised for bad input is a :class:`VitnirsError`: the command line prints its
message (no traceback) and exits with code 2. Anything else is a bug or an environment
problem and exits with code 1.
"""

from __future__ import annotations


class VitnirsError(Exception):
    """A problem with the user's input or configuration, stated in plain language."""


class ConfigError(VitnirsError):
    """A configuration key is unknown or its value is not allowed."""


class BadFileError(VitnirsError):
    """A data file cannot be used.

    Parameters
    ----------
    file:
        The file (or demo source) the problem is in.
    reason:
        One plain-language sentence saying what is wrong.
    row, column:
        1-based data row (the header is row 0) and the column header, where they apply.
    """

    def __init__(self, file: str, reason: str, *, row: int | None = None, column: str | None = None):
        self.file = str(file)
        self.reason = reason
        self.row = row
        self.column = column
        where = []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        loc = f" ({', '.join(where)})" if where else ""
        super().__init__(f"{self.file}: {reason}{loc}")

    def to_dict(self) -> dict:
        """The record that goes into a manifest's ``skipped`` list."""
        out: dict = {"file": self.file, "reason": self.reason}
        if self.row is not None:
            out["row"] = self.row
        if self.column is not None:
            out["column"] = self.column
        return out
