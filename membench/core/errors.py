"""User-facing errors: the CLI prints these as one line and exits non-zero (docs/guide.md,
"Errors and guarantees"); the Python API raises them with the same messages.

Every class is a ``MembenchError``; the subclasses say which kind of input was wrong, so that
a caller can catch one kind (``except membench.core.errors.DeviceError``).
"""
from __future__ import annotations


class MembenchError(Exception):
    """An error caused by input (names, paths, data, checkpoints), reported without a traceback."""


class UsageError(MembenchError):
    """A bad argument: an unknown or malformed name, an option of the wrong type or out of range,
    a count or seed out of range."""


class UnknownNameError(UsageError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class InvalidInputError(MembenchError):
    """A file or array the user gave is unusable: a registry entry, a checkpoint, images."""


class DeviceError(MembenchError):
    """The requested device does not exist here (``--device cuda:7``, ``--device tpu``)."""


class OutputError(MembenchError):
    """A place membench must write to is unusable (a file where a folder is needed, read-only)."""


class CorruptRecordError(InvalidInputError):
    """A stored result that cannot be read back whole; a rerun recomputes it."""


class UnavailableError(MembenchError):
    """A component exists but cannot run here (missing weights, missing optional package)."""
