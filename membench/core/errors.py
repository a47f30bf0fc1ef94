"""User-facing errors: the CLI prints these as one line and exits non-zero."""
from __future__ import annotations


class MembenchError(Exception):
    """An error caused by input (names, paths, data, checkpoints), reported without a traceback."""


class UnknownNameError(MembenchError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnavailableError(MembenchError):
    """A component exists but cannot run here (missing weights, missing optional package)."""
