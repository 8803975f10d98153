"""The second real model of the swap tests and benchmarks: the bundled GGUF requantized to Q8_0.

llama.cpp's own quantizer makes it in about 3 s, into the git-ignored model cache. It has other
weights and another size than the Q4_K_M file, so a swap between the two really loads another
model, and each answers differently.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_REQUANTIZE = """
import ctypes, sys
import llama_cpp
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
params.allow_requantize = True
params.nthread = 2
status = llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(params))
sys.exit(status)
"""


def second_model(bundled: Path) -> Path:
    """The Q8_0 requantization of ``bundled``, beside it; made once, then reused."""
    path = bundled.with_name("gemma3-270m-q8_0.gguf")
    if not path.exists():
        partial = path.with_suffix(".partial")
        subprocess.run(  # a child process: llama.cpp prints a line per tensor on stderr
            [sys.executable, "-c", _REQUANTIZE, str(bundled), str(partial)],
            check=True,
            capture_output=True,
        )
        partial.rename(path)
    return path
