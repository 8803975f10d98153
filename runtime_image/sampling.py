"""Sampling parameters and the llama.cpp sampler chains built from them.

Sampling runs inside llama.cpp (``llama_sampler_sample``): the chain filters and draws over the
logits natively, so Python never loops over a vocabulary.

A grammar is costly to apply to every token of a large vocabulary (262k for Gemma 3), so, as
llama-server does, a constrained sequence first samples without the grammar and asks the grammar
about that one token; only when the grammar rejects it is the token drawn again over the whole
vocabulary with the grammar applied first.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass, field
from typing import Any

import llama_cpp as llama

# llama-server's defaults, so that the same request samples the same way on both servers.
DEFAULT_TOP_K = 40
DEFAULT_MIN_P = 0.05


@dataclass(frozen=True)
class SamplingParams:
    """How to draw each next token. ``temperature <= 0`` means greedy."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = DEFAULT_TOP_K
    min_p: float = DEFAULT_MIN_P
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repeat_penalty: float = 1.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    grammar: str | None = None


def _chain(params: SamplingParams, vocab: Any, n_vocab: int, grammar: bool) -> tuple[Any, Any]:
    """A sampler chain, and its grammar sampler (the chain's first) when ``grammar`` is set."""
    chain = llama.llama_sampler_chain_init(llama.llama_sampler_chain_default_params())
    add = llama.llama_sampler_chain_add
    constraint = None
    if grammar and params.grammar is not None:
        constraint = llama.llama_sampler_init_grammar(vocab, params.grammar.encode(), b"root")
        if not constraint:
            llama.llama_sampler_free(chain)
            raise ValueError("the grammar for this response_format could not be compiled")
        add(chain, constraint)
    if params.logit_bias:
        entries = [llama.llama_logit_bias(token, bias) for token, bias in params.logit_bias.items()]
        biases = (llama.llama_logit_bias * len(entries))(*entries)
        add(chain, llama.llama_sampler_init_logit_bias(n_vocab, len(entries), biases))
    if params.presence_penalty or params.frequency_penalty or params.repeat_penalty != 1.0:
        add(
            chain,
            llama.llama_sampler_init_penalties(
                n_vocab, 64, params.repeat_penalty, params.frequency_penalty, params.presence_penalty
            ),
        )
    if params.temperature <= 0:
        add(chain, llama.llama_sampler_init_greedy())
        return chain, constraint
    if params.top_k > 0:
        add(chain, llama.llama_sampler_init_top_k(params.top_k))
    if params.top_p < 1.0:
        add(chain, llama.llama_sampler_init_top_p(params.top_p, 1))
    if params.min_p > 0:
        add(chain, llama.llama_sampler_init_min_p(params.min_p, 1))
    add(chain, llama.llama_sampler_init_temp(params.temperature))
    seed = params.seed if params.seed is not None else llama.LLAMA_DEFAULT_SEED
    add(chain, llama.llama_sampler_init_dist(ctypes.c_uint32(seed & 0xFFFFFFFF).value))
    return chain, constraint


class Sampler:
    """The native sampler of one sequence; ``close`` frees it."""

    __slots__ = ("_candidate", "_constrained", "_free", "_grammar", "_one")

    def __init__(self, params: SamplingParams, vocab: Any, n_vocab: int) -> None:
        self._free, _ = _chain(params, vocab, n_vocab, grammar=False)
        self._constrained, self._grammar = (None, None)
        if params.grammar is not None:
            try:
                self._constrained, self._grammar = _chain(params, vocab, n_vocab, grammar=True)
            except ValueError:
                llama.llama_sampler_free(self._free)
                raise
            self._candidate = llama.llama_token_data(0, 0.0, 0.0)
            self._one = llama.llama_token_data_array(ctypes.pointer(self._candidate), 1, -1, False)

    def sample(self, ctx: Any, index: int) -> int:
        """The next token from the logits of batch output ``index`` (accepted into the sampler state)."""
        token = int(llama.llama_sampler_sample(self._free, ctx, index))
        if self._grammar is None:
            return token
        if self._allowed(token):
            llama.llama_sampler_accept(self._constrained, token)
            return token
        return int(llama.llama_sampler_sample(self._constrained, ctx, index))

    def _allowed(self, token: int) -> bool:
        self._candidate.id = token  # type: ignore[assignment]  # ctypes converts the int
        self._candidate.logit = 0.0
        self._one.size, self._one.selected = 1, -1
        llama.llama_sampler_apply(self._grammar, ctypes.byref(self._one))
        return math.isfinite(self._candidate.logit)

    def close(self) -> None:
        """Free the chains (each owns the samplers added to it)."""
        llama.llama_sampler_free(self._free)
        if self._constrained is not None:
            llama.llama_sampler_free(self._constrained)
