"""The HTTP client to runtime pods: one pooled aiohttp session, timeouts, and failures classified.

aiohttp was measured against httpx for this hop (see docs/router.md): its connection pool stays
flat under concurrency where httpx's becomes the bottleneck, and kopf already depends on it.
Three timeouts apply: connect, first byte (until the response headers arrive) and total.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from inferflux.router.errors import ErrorCode, UpstreamError, code_for_status

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

    def __init__(self, timeouts: Timeouts) -> None:
        self.timeouts = timeouts
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session, created on first use inside the running loop."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=10)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeouts.total, sock_connect=self.timeouts.connect),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._session

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """POST ``body`` and return once the response headers are in; failures become `UpstreamError`.

        A replica-level failure (refused connection, 502/503, no headers in time) is raised as a
        retryable error before anything reached the client, so the caller can try another replica.
        """
        try:
            async with asyncio.timeout(self.timeouts.first_byte):
                response = await self.session.post(url, data=body, headers=headers)
        except TimeoutError:
            raise UpstreamError(ErrorCode.TIMEOUT, "upstream did not answer in time") from None
        except aiohttp.ClientConnectorError:
            raise UpstreamError(ErrorCode.UNAVAILABLE, "upstream refused the connection") from None
        except aiohttp.ClientError as error:
            raise UpstreamError(ErrorCode.UNAVAILABLE, f"upstream failed: {type(error).__name__}") from None
        if response.status in REPLICA_FAILURE_STATUSES:
            response.release()
            raise UpstreamError(ErrorCode.UNAVAILABLE, f"upstream answered {response.status}")
        return response

    async def get(self, url: str) -> aiohttp.ClientResponse:
        """GET with the same timeouts and classification as `post`."""
        try:
            async with asyncio.timeout(self.timeouts.first_byte):
                return await self.session.get(url)
        except TimeoutError:
            raise UpstreamError(ErrorCode.TIMEOUT, "upstream did not answer in time") from None
        except aiohttp.ClientError as error:
            raise UpstreamError(ErrorCode.UNAVAILABLE, f"upstream failed: {type(error).__name__}") from None


def classify_status(status: int, message: str = "") -> UpstreamError:
    """An upstream error status as an `UpstreamError` keeping the upstream's own status."""
    return UpstreamError(code_for_status(status), message or f"upstream answered {status}", status=status)
