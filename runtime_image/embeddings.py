"""Embeddings: a second llama.cpp context with mean pooling, used one request at a time.

It is created on the first ``/v1/embeddings`` request, so generation-only pods never pay for it.
Vectors are L2-normalised, as OpenAI's are, and sent as JSON numbers or, for
``encoding_format: base64`` (what the openai SDK asks for by default), as base64 of little-endian
float32 values.
"""

from __future__ import annotations

import base64
import math
import struct
import threading
from collections.abc import Sequence

import llama_cpp as llama

from inferflux.runtime.model import Model


class Embedder:
    """Turns token lists into unit-length vectors with the model's mean-pooled hidden states."""

    def __init__(self, model: Model, context_size: int, threads: int) -> None:
        self.model = model
        self.context_size = context_size
        self.threads = threads
        self._ctx = None
        self._batch = None
        self._lock = threading.Lock()

    def _ensure_context(self) -> None:
        if self._ctx is None:
            params = llama.llama_context_default_params()
            params.n_ctx = params.n_batch = params.n_ubatch = self.context_size
            params.n_seq_max = 1
            params.n_threads = params.n_threads_batch = self.threads
            params.embeddings = True
            params.pooling_type = llama.LLAMA_POOLING_TYPE_MEAN
            self._ctx = llama.llama_init_from_model(self.model.handle, params)
            if not self._ctx:
                raise RuntimeError("llama.cpp could not create the embeddings context")
            self._batch = llama.llama_batch_init(self.context_size, 0, 1)

    def embed(self, tokens: Sequence[int]) -> list[float]:
        """The normalised embedding of ``tokens`` (at most ``context_size`` of them)."""
        with self._lock:
            self._ensure_context()
            batch = self._batch
            assert batch is not None
            llama.llama_memory_clear(llama.llama_get_memory(self._ctx), True)
            for index, token in enumerate(tokens):
                batch.token[index] = token
                batch.pos[index] = index
                batch.n_seq_id[index] = 1
                batch.seq_id[index][0] = 0
                batch.logits[index] = True
            batch.n_tokens = len(tokens)
            if llama.llama_decode(self._ctx, batch) != 0:
                raise RuntimeError("the model failed to embed the input")
            vector = llama.llama_get_embeddings_seq(self._ctx, 0)
            values = [float(vector[i]) for i in range(self.model.n_embd)]
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        return [v / norm for v in values]

    def close(self) -> None:
        """Free the context, if one was made."""
        if self._ctx is not None:
            llama.llama_batch_free(self._batch)
            llama.llama_free(self._ctx)
            self._ctx = None


def encode_vector(vector: Sequence[float], encoding: str) -> list[float] | str:
    """``vector`` as OpenAI sends it: a list of numbers (``float``) or base64 float32 (``base64``)."""
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return list(vector)
