"""The loaded model: llama.cpp's model and vocabulary handles, tokenization and metadata.

Only this module and the engine call llama.cpp; everything above them speaks token lists and text.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import llama_cpp as llama

_backend_ready = False


class ModelLoadError(RuntimeError):
    """llama.cpp could not load the file (not a GGUF, unsupported architecture, out of memory)."""


def ensure_backend() -> None:
    """Initialise llama.cpp's backends once per process and silence its stderr chatter."""
    global _backend_ready
    if not _backend_ready:
        llama.llama_backend_init()
        llama.llama_log_set(_QUIET_LOG, ctypes.c_void_p(0))
        _backend_ready = True


@llama.llama_log_callback  # type: ignore[untyped-decorator]
def _quiet_log(level: int, text: bytes, user_data: Any) -> None:
    """Drop llama.cpp's log lines: they can echo prompt text, which must never reach the logs."""


_QUIET_LOG = _quiet_log


class Model:
    """A GGUF model loaded for inference, with its vocabulary and metadata."""

    def __init__(self, path: Path, gpu_layers: int = 0) -> None:
        ensure_backend()
        params = llama.llama_model_default_params()
        params.n_gpu_layers = gpu_layers
        handle = llama.llama_model_load_from_file(str(path).encode(), params)
        if not handle:
            raise ModelLoadError(f"llama.cpp could not load {path}")
        self.path = path
        self.handle = handle
        self.vocab = llama.llama_model_get_vocab(handle)
        self.n_vocab: int = llama.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train: int = llama.llama_model_n_ctx_train(handle)
        self.n_embd: int = llama.llama_model_n_embd(handle)
        self.n_swa: int = llama.llama_model_n_swa(handle)
        self.add_bos: bool = llama.llama_vocab_get_add_bos(self.vocab)
        self.bos_id: int = llama.llama_vocab_bos(self.vocab)
        self.eos_id: int = llama.llama_vocab_eos(self.vocab)
        self._piece_buffer = ctypes.create_string_buffer(256)

    def close(self) -> None:
        """Free the weights; the model must not be used afterwards."""
        if self.handle:
            llama.llama_model_free(self.handle)
            self.handle = None

    def metadata(self, key: str) -> str | None:
        """A GGUF metadata value as text (``tokenizer.chat_template``), or None when absent."""
        size = llama.llama_model_meta_val_str(self.handle, key.encode(), None, 0)
        if size < 0:
            return None
        buffer = ctypes.create_string_buffer(size + 1)
        llama.llama_model_meta_val_str(self.handle, key.encode(), buffer, size + 1)
        return buffer.value.decode("utf-8", errors="replace")

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = True) -> list[int]:
        """Tokens for ``text``; special tokens written in the text (``<start_of_turn>``) are parsed."""
        data = text.encode("utf-8")
        capacity = len(data) + 8
        tokens = (llama.llama_token * capacity)()
        count = llama.llama_tokenize(
            self.vocab, data, len(data), tokens, capacity, add_special, parse_special
        )
        if count < 0:
            capacity = -count
            tokens = (llama.llama_token * capacity)()
            count = llama.llama_tokenize(
                self.vocab, data, len(data), tokens, capacity, add_special, parse_special
            )
        return list(tokens[:count])

    def piece(self, token: int) -> bytes:
        """The bytes one token stands for; control tokens render as nothing."""
        buffer = self._piece_buffer
        size = llama.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, False)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = llama.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, False)
        return buffer.raw[:size]

    def is_end_of_generation(self, token: int) -> bool:
        """True for EOS, end-of-turn and the other tokens that end a generation."""
        return bool(llama.llama_vocab_is_eog(self.vocab, token))

    def token_text(self, token: int) -> str:
        """A token's text as the vocabulary spells it, special tokens included (``<eos>``)."""
        raw = llama.llama_vocab_get_text(self.vocab, token)
        return raw.decode("utf-8", errors="replace") if raw else ""
