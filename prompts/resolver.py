"""PromptResolver: prompts by ``id`` or ``id@version``, rendered, within a time budget.

The router calls ``await resolver.resolve("voice", {"name": "Ada"}, request_id=rid, user=text)``.

- Compiled prompts sit in an async TTL cache (15 minutes by default); a warm resolve does no I/O
  and no awaiting, so it costs tens of microseconds.
- ``start()`` preloads the top N prompts and follows each source's change stream: an edited prompt
  is refreshed in place, with no restart and no wait for its TTL.
- A cold resolve fetches from the sources, one fetch per key however many requests wait on it.
  Past the budget (15 ms by default) the request is answered from a stale copy if there is one,
  else from the embedded fallback prompt shipped in the package, and ``inferflux_prompts_fallback_total``
  counts it; the fetch goes on in the background so that the next request is warm.
- User text and string variables go through anti-injection sanitisation; user text only ever becomes
  a ``user`` message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferflux.crds.prompt import PromptSpec
from inferflux.prompts.compiled import CompiledPrompt, compile_prompt
from inferflux.prompts.metrics import (
    CACHE_HIT,
    CACHE_MISS,
    FALLBACK_TOTAL,
    LOADED,
    RESOLVE_SECONDS,
    RESOLVE_WARM,
    UPDATES_TOTAL,
)
from inferflux.prompts.safety import sanitise_inputs
from inferflux.prompts.sanitise import Sanitised
from inferflux.prompts.semver import sort_key
from inferflux.prompts.sources import EMBEDDED_DIR, PromptSource, read_directory

log = logging.getLogger(__name__)

DEFAULT_FALLBACK_ID = "assistant"
PRELOAD_RETRY_MAX_SECONDS = 30.0


class PromptNotFoundError(LookupError):
    """No source has this prompt (or this version of it)."""


@dataclass(frozen=True)
class ResolvedPrompt:
    """A rendered prompt, ready to put in front of a chat request."""

    id: str
    version: str
    checksum: str | None
    variant: str | None
    text: str
    messages: list[dict[str, str]]
    fallback: bool = False
    stale: bool = False
    audit: tuple[Sanitised, ...] = field(default=())


@dataclass
class _Entry:
    compiled: CompiledPrompt
    expires: float


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"voice@1.2.0"`` -> ``("voice", "1.2.0")``; ``"voice"`` -> ``("voice", None)``."""
    prompt_id, _, version = ref.partition("@")
    return prompt_id, version or None


def load_embedded(root: Path = EMBEDDED_DIR) -> dict[str, CompiledPrompt]:
    """The prompts shipped in the package, compiled, by id (latest version of each)."""
    compiled: dict[str, CompiledPrompt] = {}
    for spec in read_directory(root).values():
        current = compiled.get(spec.id)
        if current is None or sort_key(current.spec.version) < sort_key(spec.version):
            compiled[spec.id] = compile_prompt(spec)
    return compiled


class PromptResolver:
    """Resolves and renders prompts from ``sources`` (first source that has the prompt wins)."""

    def __init__(
        self,
        sources: Sequence[PromptSource],
        ttl: float = 900.0,
        budget: float = 0.015,
        preload: int = 20,
        embedded: dict[str, CompiledPrompt] | None = None,
        fallback_id: str = DEFAULT_FALLBACK_ID,
        start_timeout: float = 10.0,
    ) -> None:
        self.sources = list(sources)
        self.ttl = ttl
        self.budget = budget
        self.preload = preload
        self.embedded = load_embedded() if embedded is None else embedded
        self.fallback_id = fallback_id
        self.start_timeout = start_timeout
        self._cache: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Task[CompiledPrompt | None]] = {}
        self._watchers: list[asyncio.Task[None]] = []
        self.preloaded = False

    @property
    def loaded(self) -> int:
        """How many prompts (by id) are warm: what ``/readyz`` reports as ``prompts_loaded``."""
        return sum(1 for key in self._cache if "@" not in key)

    async def start(self) -> None:
        """Follow the sources' changes and preload the top prompts.

        A source that cannot answer within ``start_timeout`` (an API server down) does not hold the
        start up: the resolver serves the embedded fallback, and keeps retrying the preload in the
        background until it succeeds. ``preloaded`` (what ``/readyz`` reports as
        ``prompts_loaded``) stays False until then.
        """
        for source in self.sources:
            self._watchers.append(asyncio.create_task(self._follow(source)))
        try:
            async with asyncio.timeout(self.start_timeout):
                await self._preload()
        except TimeoutError:
            log.warning(
                "prompt preload did not finish in %.1f s; serving fallbacks meanwhile", self.start_timeout
            )
        except Exception as error:
            log.warning("prompt preload failed (%s); serving fallbacks meanwhile", type(error).__name__)
        else:
            self.preloaded = True
            return
        self._watchers.append(asyncio.create_task(self._retry_preload()))

    async def _retry_preload(self) -> None:
        """Retry the preload with a capped backoff until one succeeds."""
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(self.start_timeout):
                    await self._preload()
            except Exception as error:  # TimeoutError included: try again later
                log.info("prompt preload still failing (%s)", type(error).__name__)
                delay = min(delay * 2, PRELOAD_RETRY_MAX_SECONDS)
                continue
            self.preloaded = True
            log.info("prompt preload done: %d prompts loaded", self.loaded)
            return

    async def _preload(self) -> None:
        wanted: list[str] = []
        for source in self.sources:
            wanted.extend(await source.top(self.preload))
        for prompt_id in list(dict.fromkeys(wanted))[: self.preload]:
            await self._load(prompt_id)

    async def close(self) -> None:
        """Stop following changes, drop fetches in flight and close the sources."""
        tasks = [*self._watchers, *self._inflight.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._watchers.clear()
        for source in self.sources:
            await source.close()

    async def resolve(
        self,
        ref: str,
        variables: dict[str, Any] | None = None,
        *,
        request_id: str | None = None,
        user: str | None = None,
    ) -> ResolvedPrompt:
        """Render prompt ``ref`` (``id`` or ``id@version``) for one request.

        Raises PromptNotFoundError, VariablesError (variables break the prompt's schema) or
        BlockedInputError (user text or a variable is an injection attempt).
        """
        started = time.perf_counter()
        clean_variables, clean_user, audit = sanitise_inputs(variables or {}, user)
        compiled, outcome = await self._compiled(ref, started)
        resolved = self._render(compiled, clean_variables, request_id, clean_user, audit, outcome)
        histogram = RESOLVE_WARM if outcome == "warm" else RESOLVE_SECONDS.labels(outcome=outcome)
        histogram.observe(time.perf_counter() - started)
        return resolved

    async def _compiled(self, ref: str, started: float) -> tuple[CompiledPrompt, str]:
        """The compiled prompt for ``ref`` and how it was obtained (warm, cold, stale, fallback)."""
        entry = self._cache.get(ref)
        if entry is not None and entry.expires > time.monotonic():
            CACHE_HIT.inc()
            return entry.compiled, "warm"
        CACHE_MISS.inc()
        task = self._fetch_task(ref)
        remaining = self.budget - (time.perf_counter() - started)
        try:
            compiled = await asyncio.wait_for(asyncio.shield(task), max(remaining, 0.0))
        except TimeoutError:
            return self._degraded(ref, entry, "budget")
        except Exception:  # a broken source must not fail the request: degrade instead
            log.exception("prompt source failed while fetching %s", split_ref(ref)[0])
            return self._degraded(ref, entry, "error")
        if compiled is None:
            raise PromptNotFoundError(f"prompt {ref!r} not found")
        return compiled, "cold"

    def _degraded(self, ref: str, stale: _Entry | None, reason: str) -> tuple[CompiledPrompt, str]:
        if stale is not None:
            FALLBACK_TOTAL.labels(reason="stale").inc()
            return stale.compiled, "stale"
        FALLBACK_TOTAL.labels(reason=reason).inc()
        prompt_id = split_ref(ref)[0]
        fallback = self.embedded.get(prompt_id) or self.embedded.get(self.fallback_id)
        if fallback is None:
            raise PromptNotFoundError(f"prompt {ref!r} unavailable and no embedded fallback")
        return fallback, "fallback"

    def _render(
        self,
        compiled: CompiledPrompt,
        variables: dict[str, Any],
        request_id: str | None,
        user: str | None,
        audit: tuple[Sanitised, ...],
        outcome: str,
    ) -> ResolvedPrompt:
        variant = compiled.variant_for(request_id or uuid.uuid4().hex)
        # The fallback may be another prompt than the one asked for: render it leniently.
        text = compiled.render(variables, variant, strict=outcome != "fallback")
        messages = [{"role": "system", "content": text}]
        if user is not None:
            messages.append({"role": "user", "content": user})
        spec = compiled.spec
        return ResolvedPrompt(
            id=spec.id,
            version=spec.version,
            checksum=spec.checksum,
            variant=variant,
            text=text,
            messages=messages,
            fallback=outcome == "fallback",
            stale=outcome == "stale",
            audit=audit,
        )

    def _fetch_task(self, ref: str) -> asyncio.Task[CompiledPrompt | None]:
        """The single fetch in flight for ``ref`` (started when there is none)."""
        task = self._inflight.get(ref)
        if task is None:
            task = asyncio.create_task(self._load(ref))
            self._inflight[ref] = task
            task.add_done_callback(lambda done: self._fetched(ref, done))
        return task

    def _fetched(self, ref: str, task: asyncio.Task[CompiledPrompt | None]) -> None:
        """Forget a finished fetch; log its failure when no request was left waiting for it."""
        self._inflight.pop(ref, None)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background fetch of prompt %s failed: %r", split_ref(ref)[0], task.exception())

    async def _load(self, ref: str) -> CompiledPrompt | None:
        """Fetch ``ref`` from the first source that has it, compile it and cache it."""
        prompt_id, version = split_ref(ref)
        for source in self.sources:
            spec = await source.fetch(prompt_id, version)
            if spec is not None:
                return self._store(ref, spec)
        self._forget(prompt_id if version is None else ref)
        return None

    def _forget(self, ref: str) -> None:
        """Drop ``ref`` from the cache; a gone id takes its snapshots with it."""
        self._cache = {k: v for k, v in self._cache.items() if k != ref and not k.startswith(f"{ref}@")}
        LOADED.set(self.loaded)

    def _store(self, ref: str, spec: PromptSpec) -> CompiledPrompt:
        current = self._cache.get(f"{spec.id}@{spec.version}")
        same = current is not None and current.compiled.spec == spec
        compiled = current.compiled if current is not None and same else compile_prompt(spec)
        expires = time.monotonic() + self.ttl
        self._cache[ref] = _Entry(compiled, expires)
        self._cache[compiled.key] = _Entry(compiled, expires)
        LOADED.set(self.loaded)
        return compiled

    async def _follow(self, source: PromptSource) -> None:
        """Apply a source's changes as they come: refresh the latest, keep older snapshots."""
        async for prompt_id in source.changes():
            try:
                await self._load(prompt_id)
            except Exception:
                log.exception("could not refresh prompt %s", prompt_id)
                continue
            UPDATES_TOTAL.inc()
