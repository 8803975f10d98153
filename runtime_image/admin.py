"""The in-pod admin API: ``POST /admin/v1/swap`` replaces the served model without a restart.

The swap loads model B beside model A only when the memory guard says both fit (409 with the
reason otherwise), checks that B answers, switches the handlers to B in one synchronous step,
waits until no request holds A any more (its leases, streams included), and unloads A. Until the
switch, any failure unloads B and leaves A serving. Requests need ``Authorization: Bearer
<token>`` with the token read from ``INFERFLUX_ADMIN_TOKEN_FILE``; without that file the admin
API is not mounted at all.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferflux.runtime.embeddings import Embedder
from inferflux.runtime.engine import Engine, Finish, Job
from inferflux.runtime.errors import APIError, bad_request
from inferflux.runtime.generation import stream
from inferflux.runtime.integrity import integrity_problem, signature_problem
from inferflux.runtime.memory import fit_problem, model_footprint
from inferflux.runtime.model import Model, ModelLoadError
from inferflux.runtime.sampling import SamplingParams
from inferflux.runtime.serving import Runtime, Serving

log = logging.getLogger("inferflux.runtime.admin")
DRAIN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class EngineShape:
    """How to build an engine for a new model: the pod's settings."""

    context_size: int
    parallel: int
    threads: int
    batch_size: int


def read_token(path: str) -> str:
    """The admin bearer token from its file (a mounted Secret); empty files are refused."""
    token = Path(path).read_text().strip()
    if not token:
        raise ValueError(f"the admin token file {path} is empty")
    return token


def authorized(request: Request, token: str) -> bool:
    """Whether the request carries the admin bearer token (compared in constant time)."""
    header = request.headers.get("authorization", "")
    return header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode())


async def answers(engine: Engine) -> bool:
    """Whether a freshly loaded engine generates a token."""
    job = Job(prompt=[engine.model.bos_id], max_tokens=1, sampling=SamplingParams(temperature=0))
    async for event in stream(engine, job):
        if isinstance(event, Finish):
            return event.reason in ("stop", "length") and event.completion_tokens == 1
    return False


class Swapper:
    """Runs one swap at a time for a runtime."""

    def __init__(self, runtime: Runtime, shape: EngineShape, token: str, public_key_file: str = "") -> None:
        self.runtime = runtime
        self.shape = shape
        self.token = token
        # A pod started on signed weights has the trusted key: it swaps only to signed weights too.
        self.public_key_file = public_key_file
        self._lock = asyncio.Lock()

    async def handle(self, request: Request) -> Response:
        if not authorized(request, self.token):
            return APIError(
                401, "a valid admin bearer token is required", type_="authentication_error"
            ).response()
        try:
            body = orjson.loads(await request.body())
            if not isinstance(body, dict) or not isinstance(body.get("model_path"), str):
                raise bad_request("model_path is required", "model_path")
            if self._lock.locked():
                raise APIError(409, "a swap is already running", code="swap_in_progress")
            async with self._lock:
                result = await self.swap(
                    Path(body["model_path"]),
                    str(body.get("served_name") or ""),
                    str(body.get("sha256") or ""),
                    str(body.get("signature") or ""),
                )
        except orjson.JSONDecodeError:
            return bad_request("the body is not valid JSON").response()
        except APIError as exc:
            return exc.response()
        return Response(orjson.dumps(result), media_type="application/json")

    async def swap(self, path: Path, served_name: str, sha256: str, signature: str = "") -> dict[str, Any]:
        """Check, load, check, switch, drain, unload; A keeps serving on any failure before the switch."""
        began = time.perf_counter()
        if self.public_key_file and not signature:
            raise APIError(
                400, "this pod serves signed weights: a swap needs their signature", param="signature"
            )
        problem = signature_problem(sha256, signature, self.public_key_file) or await asyncio.to_thread(
            integrity_problem, path, sha256
        )
        if problem:
            raise APIError(400, problem, param="model_path", code="model_rejected")
        footprint = model_footprint(await asyncio.to_thread(_file_size, path), self.shape.context_size)
        no_room = fit_problem(self.runtime.memory(), footprint, self.runtime.headroom_factor)
        if no_room:
            raise APIError(409, f"model B does not fit beside model A: {no_room}", code="insufficient_memory")
        loop = asyncio.get_running_loop()
        try:
            model = await asyncio.to_thread(Model, path)
        except ModelLoadError as exc:
            raise APIError(400, str(exc), param="model_path", code="model_rejected") from exc
        engine = Engine(
            model,
            context_size=self.shape.context_size,
            parallel=self.shape.parallel,
            threads=self.shape.threads,
            batch_size=self.shape.batch_size,
            metrics=self.runtime.metrics,
        )
        engine.start(loop)
        old = self.runtime.serving
        embedder = Embedder(model, old.embedder.context_size, self.shape.threads)  # its context is lazy
        candidate = Serving.of(model, engine, embedder, served_name or path.stem)
        loaded = time.perf_counter()
        if not await answers(engine):
            await asyncio.to_thread(candidate.close)
            raise APIError(
                422, "model B loaded but did not generate; model A keeps serving", code="model_rejected"
            )
        self.runtime.install(candidate)
        switched = time.perf_counter()
        drained = await self._drain(old)
        await asyncio.to_thread(old.close)
        log.info(
            "swapped %s -> %s: loaded in %.2f s, answered in %.2f s, drained in %.2f s",
            old.model_id,
            self.runtime.serving.model_id,
            loaded - began,
            switched - loaded,
            time.perf_counter() - switched,
        )
        return {
            "served_name": self.runtime.serving.model_id,
            "previous": old.model_id,
            "drained": drained,
            "switched_after_s": round(switched - began, 3),
            "drained_after_s": round(time.perf_counter() - began, 3),
        }

    async def _drain(self, old: Serving) -> bool:
        """Wait until no request holds ``old``; False when the drain timeout ran out first."""
        deadline = asyncio.get_running_loop().time() + DRAIN_TIMEOUT_S
        while old.leases or old.engine.busy:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def routes(self) -> list[Route]:
        """The admin routes to mount."""
        return [Route("/admin/v1/swap", self.handle, methods=["POST"])]


def _file_size(path: Path) -> int:
    return path.stat().st_size
