"""Errors that end a command, each with the exit code scripts rely on."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    INTERRUPTED = 130


class NatprobeError(Exception):
    """An error with a one-line message for the user and an exit code."""

    exit_code: ExitCode = ExitCode.UNREACHABLE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(NatprobeError):
    exit_code = ExitCode.USAGE


class TargetError(NatprobeError):
    """The target could not be reached, or spoke the protocol wrong."""

    exit_code = ExitCode.UNREACHABLE

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        #: The server's error code, when the server said why (e.g. "busy").
        self.code = code


class UnsupportedOption(UsageError):
    """A socket option this OS does not have."""
