"""Sampling parameters and the llama.cpp sampler chain built from them.

Sampling runs inside llama.cpp (``llama_sampler_sample``): the chain filters and draws over the
logits natively, so Python never loops over a vocabulary.
"""

from __future__ import annotations

import ctypes
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


def build_sampler(params: SamplingParams, vocab: Any, n_vocab: int) -> Any:
    """A new llama.cpp sampler chain for one sequence; the caller frees it with ``free_sampler``.

    The grammar comes first so that filtering never removes every token the grammar allows.
    """
    chain = llama.llama_sampler_chain_init(llama.llama_sampler_chain_default_params())
    add = llama.llama_sampler_chain_add
    if params.grammar is not None:
        grammar = llama.llama_sampler_init_grammar(vocab, params.grammar.encode(), b"root")
        if not grammar:
            llama.llama_sampler_free(chain)
            raise ValueError("the grammar for this response_format could not be compiled")
        add(chain, grammar)
    if params.logit_bias:
        entries = [llama.llama_logit_bias(token, bias) for token, bias in params.logit_bias.items()]
        biases = (llama.llama_logit_bias * len(entries))(*entries)
        add(chain, llama.llama_sampler_init_logit_bias(n_vocab, len(params.logit_bias), biases))
    if params.presence_penalty or params.frequency_penalty or params.repeat_penalty != 1.0:
        add(
            chain,
            llama.llama_sampler_init_penalties(
                n_vocab, 64, params.repeat_penalty, params.frequency_penalty, params.presence_penalty
            ),
        )
    if params.temperature <= 0:
        add(chain, llama.llama_sampler_init_greedy())
        return chain
    if params.top_k > 0:
        add(chain, llama.llama_sampler_init_top_k(params.top_k))
    if params.top_p < 1.0:
        add(chain, llama.llama_sampler_init_top_p(params.top_p, 1))
    if params.min_p > 0:
        add(chain, llama.llama_sampler_init_min_p(params.min_p, 1))
    add(chain, llama.llama_sampler_init_temp(params.temperature))
    seed = params.seed if params.seed is not None else llama.LLAMA_DEFAULT_SEED
    add(chain, llama.llama_sampler_init_dist(ctypes.c_uint32(seed & 0xFFFFFFFF).value))
    return chain


def free_sampler(chain: Any) -> None:
    """Free a chain made by ``build_sampler`` (it owns the samplers added to it)."""
    llama.llama_sampler_free(chain)
