"""The HTTP client to runtime pods: a pooled lean HTTP/1.1 client, timeouts, failures classified.

Three clients were measured for this hop (docs/router.md): httpx collapses under concurrency,
aiohttp is fast but adds 1-2 ms of waiting for response headers with 64 streams in flight, and the
minimal client in `http1` does not. Three timeouts apply: connect, first byte (until the
response headers arrive) and total (enforced by the dispatcher around the whole exchange).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from inferflux.router.errors import ErrorCode, UpstreamError, code_for_status
from inferflux.router.http1 import Pool, ProtocolError, Response

# Statuses that mean "this replica cannot take it", so another replica may.
REPLICA_FAILURE_STATUSES = frozenset({502, 503})


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed to connect, to receive the response headers, and for the whole exchange."""

    connect: float = 5.0
    first_byte: float = 60.0
    total: float = 600.0


class UpstreamClient:
    """A shared connection pool to every upstream, kept alive between requests."""

    def __init__(self, timeouts: Timeouts, ca_file: str | None = None) -> None:
        self.timeouts = timeouts
        self.pool = Pool(timeouts.connect, ca_file=ca_file)

    async def close(self) -> None:
        """Close every pooled connection."""
        self.pool.close()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        """POST ``body`` and return once the response headers are in; failures become `UpstreamError`.

        A replica-level failure (refused connection, 502/503, no headers in time) is raised as a
        retryable error before anything reached the client, so the caller can try another replica.
        """
        try:
            async with asyncio.timeout(self.timeouts.first_byte):
                response = await self.pool.post(url, body, headers)
        except TimeoutError:
            raise UpstreamError(ErrorCode.TIMEOUT, "upstream did not answer in time") from None
        except ConnectionRefusedError:
            raise UpstreamError(ErrorCode.UNAVAILABLE, "upstream refused the connection") from None
        except (OSError, asyncio.IncompleteReadError, ProtocolError) as error:
            raise UpstreamError(ErrorCode.UNAVAILABLE, f"upstream failed: {type(error).__name__}") from None
        if response.status in REPLICA_FAILURE_STATUSES:
            response.close()
            raise UpstreamError(ErrorCode.UNAVAILABLE, f"upstream answered {response.status}")
        return response


def classify_status(status: int, message: str = "") -> UpstreamError:
    """An upstream error status as an `UpstreamError` keeping the upstream's own status."""
    return UpstreamError(code_for_status(status), message or f"upstream answered {status}", status=status)
