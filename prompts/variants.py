"""A/B variants: a prompt's weighted alternatives, chosen deterministically per request id.

The same request id always lands on the same variant (so retries and resumed streams see the same
prompt), and across many ids the shares follow the weights. Weights are relative; a variant that
replaces no slice is the control arm. A prompt without variants, or whose weights are all zero,
always renders its base slices.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from inferflux.crds.prompt import PromptVariant


def bucket(prompt_id: str, request_id: str, buckets: int) -> int:
    """A stable bucket in ``[0, buckets)`` for this request of this prompt.

    The prompt id is mixed in so that two experiments on different prompts are independent.
    """
    digest = hashlib.blake2b(f"{prompt_id}\x00{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def choose_variant(
    prompt_id: str, variants: Sequence[PromptVariant], request_id: str
) -> PromptVariant | None:
    """The variant serving ``request_id``, or None for the base prompt."""
    total = sum(v.weight for v in variants)
    if total == 0:
        return None
    point = bucket(prompt_id, request_id, total)
    for variant in variants:
        if point < variant.weight:
            return variant
        point -= variant.weight
    raise AssertionError("unreachable: point < total weight")
