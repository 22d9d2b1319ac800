"""Errors a user can fix: a bad annotation file, a bad config or run-spec value, weights that cannot be had,
a wrong videos folder. `python -m avqa` prints such an error as one line on stderr, naming the command, and exits
with status 2; `--debug` shows the traceback instead. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """Base of the errors the CLI reports as one line with exit status 2."""


def one_line(error: BaseException) -> str:
    """The error's message on one line (multi-line messages, e.g. a how-to, joined with ' | ')."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " | ".join(lines) or type(error).__name__
