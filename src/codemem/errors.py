"""Errors a user can fix, apart from bugs.

Every stage runs under `python -m codemem <stage>`, which prints a `UserError` as one line (what is
wrong, where, how to fix it) and exits with status 2. Anything else is a bug in codemem and keeps its
traceback, so it is not mistaken for bad input.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem in the user's input, settings or environment; the message says how to fix it."""


class MissingInputError(UserError):
    """An earlier stage's output is missing: the message names the stage to run."""


class InputError(UserError):
    """Input data that cannot be used (a corpus too small for the recipe, a malformed file)."""


class DeviceError(UserError):
    """The requested device is not available on this machine."""


class DiskFullError(UserError):
    """Not enough free disk space for what a stage writes: the message says where, how much, and
    what can be freed (DVC's cache, build/)."""


class Interrupted(UserError):
    """The run was stopped by a signal (SIGTERM, SIGINT) after saving what it could; the message says
    how to resume. Exits with the shell's code for the signal (128 + its number)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum
