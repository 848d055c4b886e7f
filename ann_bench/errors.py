"""Exceptions whose message is meant for the user.

The CLIs print the message of any `UserError` on one line and exit with status 2, so the
message must say what was wrong and what to do about it.
"""

import sys

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Something the user can fix: a bad name, a malformed file, a missing download."""


class DatasetError(UserError):
    """A dataset is unknown, cannot be fetched, or its file is damaged."""


class ConfigError(UserError):
    """algorithms.yaml (or a definitions file) is malformed."""


class UnknownNameError(UserError):
    """A dataset or algorithm name that does not exist; the message lists the closest names."""


def report(error: UserError) -> int:
    """Print the error on one line (as every CLI does) and return the exit status for it."""
    print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
    return EXIT_USER_ERROR
