"""The operator's side of an in-place swap: ``POST /admin/v1/swap`` on one runtime pod.

The runtime (``inferflux.runtime.admin``) answers 200 once the new model serves, 409 when the new
model does not fit beside the old one (or a swap is already running), and another error when the
load failed — the old model keeps serving in every case but the first. The outcome is reduced to
three kinds: swapped, refused (fall back to blue/green), failed (the reason goes to status). The
bearer token is sent only in the header and never logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import aiohttp

from inferflux.operator.render.labels import RUNTIME_PORT

log = logging.getLogger(__name__)

SWAP_PATH: Final = "/admin/v1/swap"
# Loading a model of a few GiB, checking it and draining the old one's requests can take minutes.
SWAP_TIMEOUT_SECONDS: Final = 600.0
CONNECT_TIMEOUT_SECONDS: Final = 5.0


class Outcome(StrEnum):
    """How one pod's swap ended."""

    SWAPPED = "Swapped"
    REFUSED = "Refused"
    FAILED = "Failed"


@dataclass(frozen=True)
class SwapRequest:
    """What the runtime needs to load the new weights: their path in the pod, name, digest and, for a
    signed source, the signature it checks with the key mounted in the pod."""

    model_path: str
    served_name: str
    sha256: str
    signature: str = ""

    def body(self) -> dict[str, str]:
        """The JSON body the runtime's admin API reads."""
        body = {"model_path": self.model_path, "served_name": self.served_name, "sha256": self.sha256}
        return body | ({"signature": self.signature} if self.signature else {})


@dataclass(frozen=True)
class SwapResult:
    """One pod's answer, with a reason fit for a condition message."""

    outcome: Outcome
    reason: str


def swap_url(pod_ip: str, port: int = RUNTIME_PORT) -> str:
    """The admin URL of a pod (IPv6 addresses are bracketed)."""
    host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
    return f"http://{host}:{port}{SWAP_PATH}"


def _error_message(payload: Any, status: int) -> str:
    """The OpenAI-shaped error's message, else the status alone."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return str(payload["error"].get("message") or f"HTTP {status}")[:512]
    return f"HTTP {status}"


def classify(status: int, payload: Any) -> SwapResult:
    """The outcome of an HTTP answer from the admin API."""
    if status == 200:
        return SwapResult(Outcome.SWAPPED, "swapped")
    message = _error_message(payload, status)
    if status == 409:
        return SwapResult(Outcome.REFUSED, message)
    return SwapResult(Outcome.FAILED, f"HTTP {status}: {message}")


async def swap_pod(
    session: aiohttp.ClientSession,
    pod_ip: str,
    token: str,
    request: SwapRequest,
    port: int = RUNTIME_PORT,
    load_seconds: float = SWAP_TIMEOUT_SECONDS,
) -> SwapResult:
    """Ask the pod at ``pod_ip`` to swap to ``request``; connection errors are failures, not raises."""
    limits = aiohttp.ClientTimeout(total=load_seconds, connect=CONNECT_TIMEOUT_SECONDS)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with session.post(
            swap_url(pod_ip, port), json=request.body(), headers=headers, timeout=limits
        ) as response:
            try:
                payload: Any = await response.json(content_type=None)
            except ValueError:
                payload = None
            result = classify(response.status, payload)
    except (aiohttp.ClientError, TimeoutError) as error:
        result = SwapResult(Outcome.FAILED, f"the admin API did not answer: {type(error).__name__}")
    log.info("in-place swap on pod %s: %s", pod_ip, result.outcome.value)
    return result


async def swap_pods(
    session: aiohttp.ClientSession,
    pod_ips: list[str],
    token: str,
    request: SwapRequest,
    port: int = RUNTIME_PORT,
) -> SwapResult:
    """Swap the pods one at a time, stopping at the first that does not swap.

    One at a time, so at most one pod is busy loading while the others keep serving; a refusal or
    failure stops the sequence (pods already swapped serve the new model; the caller then moves
    the rest blue/green, which replaces every pod anyway).
    """
    if not pod_ips:
        return SwapResult(Outcome.FAILED, "no runtime pod to swap")
    for ip in pod_ips:
        result = await swap_pod(session, ip, token, request, port)
        if result.outcome != Outcome.SWAPPED:
            return result
    return SwapResult(Outcome.SWAPPED, f"{len(pod_ips)} pod(s) swapped")
