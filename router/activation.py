"""What the router tells the operator about a model's use: its last request, its in-flight count,
and "activate it now" for a model scaled to zero.

The channel is the InferenceModel itself: a JSON merge patch of three annotation keys
(``inferflux.io/last-request``, ``inferflux.io/activate`` and this router's own
``inferflux.io/in-flight.<router>``), nothing else. Several routers write side by side without
reading: each owns its in-flight key, and the times are the latest any of them saw (a router
that writes later with an older time moves ``last-request`` back by at most one report period).
Only models with ``scaleToZero`` or ``autoscaling`` enabled are tracked, and each is written at
most once per report period, plus at most one activation every ``ACTIVATE_EVERY_SECONDS``.
See docs/scaling.md for why this channel and not the routers' metrics.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from inferflux.crds.inferencemodel import (
    ACTIVATE_ANNOTATION,
    IN_FLIGHT_ANNOTATION_PREFIX,
    LAST_REQUEST_ANNOTATION,
)
from inferflux.crds.inferencemodel import PLURAL as MODELS
from inferflux.crds.meta import API_VERSION
from inferflux.crds.routing import ModelRoute
from inferflux.router.kube_client import CustomObjects

log = logging.getLogger(__name__)

ACTIVATE_EVERY_SECONDS = 5.0
MERGE_PATCH = "application/merge-patch+json"
_NAME_PART = 63  # the longest name part of an annotation key
_KEY_CHARS = re.compile(r"[^a-z0-9.-]")

ModelKey = tuple[str, str]  # namespace, name
#: Writes annotations on an InferenceModel; a None value removes the key.
Write = Callable[[str, str, dict[str, str | None]], Awaitable[None]]
#: Requests for a served name in this router now (held, queued or served): Dispatcher.load.
Load = Callable[[str], int]


def in_flight_key(router: str) -> str:
    """This router's in-flight annotation key: its name when it fits, else a digest of it."""
    suffix = _KEY_CHARS.sub("-", router.lower()).strip(".-")
    room = _NAME_PART - len(IN_FLIGHT_ANNOTATION_PREFIX.split("/", 1)[1])
    if not suffix or len(suffix) > room:
        suffix = hashlib.sha256(router.encode()).hexdigest()[:16]
    return IN_FLIGHT_ANNOTATION_PREFIX + suffix


def tracked(route: ModelRoute) -> bool:
    """Whether the operator scales this model from what the routers report."""
    return (route.scale_to_zero or route.autoscaling) and bool(route.name)


@dataclass
class _Model:
    served: str
    last_seen: float = 0.0
    last_written: float = 0.0
    written_in_flight: int = 0
    activated: float = float("-inf")


class ActivityReporter:
    """Notes requests per tracked model and reports them through ``write`` at a bounded rate.

    The in-flight count is read from ``load`` when a report is due, not counted per request, so
    the request path pays one dictionary write per request and nothing when a request ends.
    """

    def __init__(
        self, write: Write, load: Load, router: str, period: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._write = write
        self._load = load
        self._key = in_flight_key(router)
        self.period = period
        self._clock = clock
        self._models: dict[ModelKey, _Model] = {}
        self._tasks: set[asyncio.Task[bool]] = set()

    def _model(self, served: str, route: ModelRoute) -> _Model:
        key = (route.namespace, route.name)
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = _Model(served)
        return model

    def seen(self, served: str, route: ModelRoute) -> None:
        """A request for ``route`` (served name ``served``) arrived."""
        if tracked(route):
            self._model(served, route).last_seen = self._clock()

    def activate(self, served: str, route: ModelRoute) -> None:
        """Ask the operator to scale ``route``'s model up (at once, then at most every few seconds)."""
        if not route.scale_to_zero or not route.name:
            return
        model = self._model(served, route)
        now = self._clock()
        if now - model.activated < ACTIVATE_EVERY_SECONDS:
            return
        model.activated = now
        stamp = f"{now:.3f}"
        changes: dict[str, str | None] = {ACTIVATE_ANNOTATION: stamp, LAST_REQUEST_ANNOTATION: stamp}
        task = asyncio.ensure_future(self._send(route.namespace, route.name, changes))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def due(self) -> dict[ModelKey, dict[str, str | None]]:
        """The annotations to write now: a newer request, and this router's in-flight count while
        it is not 0 (refreshed every period, so that the operator can tell a live count from the
        one a dead router left) or once when it returns to 0 (the key is removed)."""
        now = self._clock()
        writes: dict[ModelKey, dict[str, str | None]] = {}
        for key, model in self._models.items():
            changes: dict[str, str | None] = {}
            if model.last_seen > model.last_written:
                changes[LAST_REQUEST_ANNOTATION] = f"{model.last_seen:.3f}"
            in_flight = self._load(model.served)
            if in_flight:
                changes[self._key] = f"{in_flight} {now:.0f}"
            elif model.written_in_flight:
                changes[self._key] = None
                # the model was in use until now: the idle time counts from the end of its requests
                changes[LAST_REQUEST_ANNOTATION] = f"{max(now, model.last_seen):.3f}"
            if changes:
                writes[key] = changes
        return writes

    async def flush(self) -> None:
        """Write what is due; a failed write is retried at the next flush."""
        for (namespace, name), changes in self.due().items():
            if await self._send(namespace, name, changes):
                model = self._models[(namespace, name)]
                if LAST_REQUEST_ANNOTATION in changes:
                    model.last_written = max(model.last_written, float(changes[LAST_REQUEST_ANNOTATION] or 0))
                if self._key in changes:
                    value = changes[self._key]
                    model.written_in_flight = int(value.split()[0]) if value else 0

    async def _send(self, namespace: str, name: str, changes: dict[str, str | None]) -> bool:
        try:
            await self._write(namespace, name, changes)
        except Exception as error:  # a failed report must never fail a request
            log.warning("could not report activity of model %s/%s: %s", namespace, name, type(error).__name__)
            return False
        return True

    async def run(self) -> None:
        """Flush every period until cancelled."""
        while True:
            await asyncio.sleep(self.period)
            await self.flush()

    async def close(self) -> None:
        """Let activations on the way finish, then close the writer's connections."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
        close = getattr(self._write, "close", None)
        if close is not None:
            await close()


class ModelAnnotationWriter:
    """Merge-patches annotations of InferenceModels, with a kubeconfig or the pod's service account."""

    def __init__(self, kubeconfig: str | None = None) -> None:
        self._client = CustomObjects(kubeconfig)

    async def __call__(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        """Set (or, for None, remove) ``annotations`` on InferenceModel ``namespace/name``."""
        group, version = API_VERSION.split("/")
        api = await self._client.api()
        body = {"metadata": {"annotations": annotations}}
        await api.patch_namespaced_custom_object(
            group, version, namespace, MODELS, name, body, _content_type=MERGE_PATCH
        )

    async def close(self) -> None:
        """Close the API client's connections."""
        await self._client.close()
