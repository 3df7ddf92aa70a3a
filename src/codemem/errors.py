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
