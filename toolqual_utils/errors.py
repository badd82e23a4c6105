"""Errors meant for people.

Every error that reaches the command line is a :class:`ToolqualError`: the CLI prints its message as one
paragraph and exits non-zero, with no traceback. Messages name the file, the record and the field, and
say what was expected.
"""
from __future__ import annotations


class ToolqualError(Exception):
    """An error whose message is shown to the user as is (no traceback)."""

    exit_code: int = 2


class InputError(ToolqualError):
    """Bad input: a file, record or field that is not what the workbench expects."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        record: str | int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.record = record
        self.field = field
        where = []
        if file is not None:
            where.append(f"file {file}")
        if record is not None:
            where.append(f"record {record}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)

    def __reduce__(self):
        # keyword-only fields: rebuilt as given (an error raised in a worker process arrives whole)
        return _input_error, (self.message, self.file, self.record, self.field)


def _input_error(message: str, file: str | None, record: str | int | None, field: str | None) -> InputError:
    return InputError(message, file=file, record=record, field=field)


class ConfigError(ToolqualError):
    """A missing or contradictory setting (model, base URL, environment)."""


class EmptyResultError(ToolqualError):
    """A run that would produce nothing useful (e.g. a selection that keeps no instance); says why."""

    exit_code = 1


class EndpointError(ToolqualError):
    """The model endpoint could not be reached; the run stopped early (what it finished is kept)."""

    exit_code = 3
