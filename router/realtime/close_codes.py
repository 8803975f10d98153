"""The WebSocket close codes a realtime connection ends with, one per failure (docs/realtime.md).

1000-1013 are RFC 6455's own meanings; 4000-4999 are the application's, mirroring HTTP statuses
(4401 is "401 over a WebSocket") so that a client maps them the way it maps HTTP errors.
"""

from __future__ import annotations

import enum


class CloseCode(enum.IntEnum):
    """Why the server closed a realtime WebSocket."""

    NORMAL = 1000  # the client said goodbye, or the session ended
    GOING_AWAY = 1001  # the router is shutting down
    UNSUPPORTED_DATA = 1003  # a binary frame: the contract is JSON text frames
    POLICY_VIOLATION = 1008  # more frames per second than allowed
    TOO_BIG = 1009  # a frame over the size limit
    INTERNAL_ERROR = 1011  # a bug; the session can be resumed
    SLOW_CONSUMER = 1013  # the client read too slowly and fell behind the session's buffer
    UNAUTHENTICATED = 4401  # no ticket, or an unknown, expired or already used one
    SESSION_GONE = 4404  # the ticket's session expired or was replaced
    REPLACED = 4409  # another connection took over the session
