"""Where local mode keeps its state: the model cache, and the run folder of one ``inferctl up``."""

from __future__ import annotations

import os
from pathlib import Path

MODEL_DIR_ENV = "INFERFLUX_MODEL_DIR"


def model_dir() -> Path:
    """The folder local mode reads and pulls weights into: ``$INFERFLUX_MODEL_DIR`` or ``.cache/models``."""
    return Path(os.environ.get(MODEL_DIR_ENV) or ".cache/models")
