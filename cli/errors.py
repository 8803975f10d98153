"""The one error type commands raise: it becomes one readable line and a non-zero exit."""

from __future__ import annotations


class CliError(Exception):
    """A user-facing failure; ``str(error)`` is the whole message and ``exit_code`` the status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
