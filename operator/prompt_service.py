"""Reconcile one Prompt: verify its checksum, publish it in a ConfigMap, report status.

A Prompt whose ``spec.checksum`` does not match its content was edited without re-sealing; it is
not published (the previous ConfigMap, if any, keeps serving) and ends ``Stalled`` with reason
``ChecksumMismatch``. An unsealed Prompt (no checksum) is published with the computed checksum.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from pydantic import ValidationError

from inferflux.crds.meta import Condition, ConditionType
from inferflux.crds.prompt import KIND, Prompt, PromptStatus
from inferflux.operator.cache import ClusterCache, Key
from inferflux.operator.render.prompt import prompt_checksum, prompt_configmap_name, render_prompt_configmap
from inferflux.operator.reporter import report_status
from inferflux.operator.status import OK, RECONCILING, Stall, Verdict, apply_verdicts
from inferflux.operator.storage import Storage

log = logging.getLogger(__name__)

CHECKSUM_MISMATCH = "ChecksumMismatch"


def prompt_stall(prompt: Prompt, expected: str) -> Stall | None:
    """A stall when the Prompt carries a checksum other than its content's."""
    claimed = prompt.spec.checksum
    if claimed is not None and claimed != expected:
        return Stall(CHECKSUM_MISMATCH, f"spec.checksum is {claimed} but the content hashes to {expected}")
    return None


def prompt_conditions(
    previous: Sequence[Condition], generation: int, stall: Stall | None, at: dt.datetime | None = None
) -> list[Condition]:
    """Ready/Stalled/Progressing/Reconciling of a Prompt after one reconcile."""
    verdicts: dict[str, Verdict]
    if stall is not None:
        verdicts = {
            ConditionType.READY: ("False", stall.reason, stall.message),
            ConditionType.STALLED: ("True", stall.reason, stall.message),
        }
    else:
        verdicts = {
            ConditionType.READY: ("True", "Published", "verified and published for the router"),
            ConditionType.STALLED: ("False", OK, ""),
        }
    done = "Stalled" if stall else "Published"
    verdicts[ConditionType.PROGRESSING] = verdicts[RECONCILING] = ("False", done, "")
    return apply_verdicts(previous, verdicts, generation, at)


class PromptService:
    """Publishes verified Prompts for the router."""

    def __init__(self, storage: Storage, cache: ClusterCache) -> None:
        self._storage = storage
        self._cache = cache

    async def reconcile(self, key: Key) -> float | None:
        """Verify and publish ``key``'s Prompt; its ConfigMap goes away with it (owner reference)."""
        body = self._cache.prompts.get(key)
        if body is None:
            return None
        try:
            prompt = Prompt.from_body(body)
        except ValidationError as error:
            log.warning("prompt %s/%s does not parse: %s", *key, error.error_count())
            return None
        expected = prompt_checksum(prompt.spec)
        stall = prompt_stall(prompt, expected)
        if stall is None:
            await self._storage.apply(render_prompt_configmap(prompt, expected))
        status = PromptStatus(
            observed_generation=prompt.metadata.generation,
            conditions=prompt_conditions(prompt.status.conditions, prompt.metadata.generation, stall),
            checksum=expected if stall is None else prompt.status.checksum,
            config_map=prompt_configmap_name(prompt) if stall is None else prompt.status.config_map,
        )
        await report_status(self._storage, KIND, prompt.metadata, prompt.status, status)
        return None
