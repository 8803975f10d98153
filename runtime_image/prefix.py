"""Prefix reuse: which idle slot's cached KV best serves a new prompt, and how much of it to keep.

Like llama-server's prompt cache, each sequence slot remembers the tokens whose KV it holds. A new
request goes to the idle slot sharing the longest prefix with its prompt, and only the rest of the
prompt is prefilled.
"""

from __future__ import annotations

from collections.abc import Sequence


def common_prefix_length(cached: Sequence[int], prompt: Sequence[int]) -> int:
    """The number of leading tokens ``cached`` and ``prompt`` share."""
    limit = min(len(cached), len(prompt))
    for index in range(limit):
        if cached[index] != prompt[index]:
            return index
    return limit


def reusable_length(cached: Sequence[int], prompt: Sequence[int]) -> int:
    """Tokens of ``prompt`` whose KV can be kept from ``cached``.

    At least one prompt token is always decoded again, because sampling needs its logits.
    """
    return min(common_prefix_length(cached, prompt), max(len(prompt) - 1, 0))


# Below this share of the prompt, the best match is not worth destroying the rest of its slot's cache.
MIN_SHARED = 0.5


def choose_slot(idle: Sequence[tuple[int, Sequence[int]]], prompt: Sequence[int]) -> tuple[int, int]:
    """``(slot id, reusable tokens)`` for the idle ``(slot id, cached tokens)`` that serves ``prompt`` best.

    The slot sharing the longest prefix, ties going to the one caching the fewest tokens, so long
    useful prefixes stay cached longest. But when even the best shares less than ``MIN_SHARED`` of
    the prompt (two A/B variants of one system prompt, say, which part after a common head), the
    prompt goes to the slot caching the fewest tokens instead: taking the best one would overwrite
    a prefix that its own next request would reuse whole (llama-server's slot similarity, 0.5).
    """
    best = min(idle, key=lambda pair: (-reusable_length(pair[1], prompt), len(pair[1])))
    if reusable_length(best[1], prompt) < MIN_SHARED * len(prompt):
        best = min(idle, key=lambda pair: (len(pair[1]), -reusable_length(pair[1], prompt)))
    return best[0], reusable_length(best[1], prompt)


def swa_allows_reuse(reuse: int, oldest_cached_pos: int, n_swa: int) -> bool:
    """Whether a sliding-window cache still holds the KV that decoding after ``reuse`` tokens attends to.

    A sliding-window layer drops positions older than its window, so reuse past them is only valid
    when the oldest position still cached is within the window before the resume point.
    """
    if n_swa <= 0 or reuse == 0:
        return True
    return oldest_cached_pos <= max(0, reuse - n_swa)
