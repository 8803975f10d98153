"""Which way a new revision reaches traffic: swapped in place inside the running pods, or blue/green.

An in-place swap asks each running runtime pod to load the new weights beside the old ones and
switch (the runtime's admin API, guarded by its memory check). It is only possible when nothing
but the weights changed, the new weights are visible in the pod already (the same volume), and
they are small enough. Everything else — engine args, image, served name, a source that needs a
new volume or a download — needs new pods, so it goes blue/green. The choice is pure; the pod's
own answer (a 409 when the new model does not fit beside the old one) is folded in afterwards
with ``after_refusal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from inferflux.crds.inferencemodel import Engine, InferenceModel, RolloutStrategy
from inferflux.crds.quantity import parse_quantity
from inferflux.operator.render.signing import signing_volume
from inferflux.operator.render.volume import SourceError, model_volume

FORCED: Final = "Forced"
SOURCE_ONLY: Final = "SourceOnlyChange"
NOT_SOURCE_ONLY: Final = "ServingSpecChanged"
NEW_VOLUME: Final = "SourceNeedsNewVolume"
SIZE_UNKNOWN: Final = "SizeUnknown"
OVER_LIMIT: Final = "OverInPlaceLimit"
NOT_LLAMACPP: Final = "EngineCannotSwapInPlace"
REFUSED: Final = "InPlaceRefused"
TEMPLATE_NAMES_WEIGHTS: Final = "TemplateNamesWeights"
NOT_SETTLED: Final = "PodsNotSettled"


@dataclass(frozen=True)
class Choice:
    """A strategy (never Auto) and why it was picked, for status and Events."""

    strategy: RolloutStrategy
    reason: str
    message: str

    @property
    def in_place(self) -> bool:
        """Whether the pods are asked to swap in place."""
        return self.strategy == RolloutStrategy.IN_PLACE


def _blue_green(reason: str, message: str) -> Choice:
    return Choice(RolloutStrategy.BLUE_GREEN, reason, message)


def only_source_changed(active: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether two serving specs (``labels.serving_spec``) differ in the source's uri/sha256 alone."""
    rest = {k: v for k, v in active.items() if k != "source"}
    if rest != {k: v for k, v in wanted.items() if k != "source"}:
        return False
    old, new = active.get("source") or {}, wanted.get("source") or {}
    return (old.get("uri"), old.get("sha256")) != (new.get("uri"), new.get("sha256"))


def same_volume(active: dict[str, Any], model: InferenceModel, runtime_image: str) -> bool:
    """Whether the new weights are reachable in the running pods: same volumes, no init container,
    and the same signing key mounted (or none), so a restarted pod checks them as a new one would."""
    if model.spec.source is None or not active.get("source"):
        return False
    try:
        old_source = type(model.spec.source).model_validate(active["source"])
        old = model_volume(old_source, runtime_image)
        new = model_volume(model.spec.source, runtime_image)
    except (SourceError, ValueError):
        return False
    same_key = signing_volume(old_source) == signing_volume(model.spec.source)
    return not new.init_containers and (old.volumes, old.mounts) == (new.volumes, new.mounts) and same_key


def choose_strategy(
    model: InferenceModel,
    active: dict[str, Any] | None,
    wanted: dict[str, Any],
    runtime_image: str,
    weights_from_configmap: bool = True,
) -> Choice:
    """The strategy for moving from the ``active`` serving spec (None: nothing serves) to ``wanted``.

    ``weights_from_configmap`` says the active Deployment's pods read their weights from its
    ConfigMap (``render/weights.py``); one whose template names them (rendered before that) cannot
    be swapped in place, since a pod restarted later would load the old weights.

    Forced strategies are honoured (the CRD already restricts InPlace to llama.cpp), except that
    an in-place swap of something other than the weights is impossible and goes blue/green. Auto
    picks InPlace for a weights-only change under ``rollout.inPlaceSizeLimit`` whose size is
    known; the pod's memory guard has the last word (``after_refusal``).
    """
    rollout = model.spec.rollout
    if active is None:
        return _blue_green(NOT_SOURCE_ONLY, "no revision serves yet")
    if rollout.strategy == RolloutStrategy.BLUE_GREEN:
        return _blue_green(FORCED, "spec.rollout.strategy is BlueGreen")
    if model.spec.engine != Engine.LLAMACPP:
        return _blue_green(NOT_LLAMACPP, f"engine {model.spec.engine} has no in-place swap")
    if not only_source_changed(active, wanted):
        return _blue_green(NOT_SOURCE_ONLY, "more than the model source changed; new pods are needed")
    if not same_volume(active, model, runtime_image):
        return _blue_green(NEW_VOLUME, "the new source is not reachable in the running pods")
    if not weights_from_configmap:
        return _blue_green(TEMPLATE_NAMES_WEIGHTS, "the active pods' template names the weights itself")
    if rollout.strategy == RolloutStrategy.IN_PLACE:
        return Choice(RolloutStrategy.IN_PLACE, FORCED, "spec.rollout.strategy is InPlace")
    size = model.spec.source.size_bytes if model.spec.source else None
    if size is None:
        return _blue_green(SIZE_UNKNOWN, "spec.source.sizeBytes is unset, so the swap cannot be sized")
    limit = int(parse_quantity(rollout.in_place_size_limit))
    if size >= limit:
        return _blue_green(OVER_LIMIT, f"{size} bytes is not under inPlaceSizeLimit ({limit} bytes)")
    return Choice(RolloutStrategy.IN_PLACE, SOURCE_ONLY, f"weights-only change of {size} bytes")


def not_settled(ready: int, unsettled: int, desired: int) -> str:
    """Why the active revision's pods cannot all be swapped now (empty when they can): a pod that is
    starting, un-Ready or ending would be missed and keep the old weights under the new revision."""
    if unsettled or ready != desired or desired == 0:
        pending = f"{unsettled} starting, un-Ready or ending"
        return f"{ready} of {desired} pods Ready, {pending}; every pod must be swapped"
    return ""


def after_refusal(choice: Choice, why: str) -> Choice:
    """The choice once a runtime pod refused the in-place swap (409: it does not fit): blue/green."""
    if not choice.in_place:
        return choice
    return _blue_green(REFUSED, f"a runtime pod refused the in-place swap: {why}"[:1024])
