"""``python -m inferflux.runtime.verify``: check weights before an engine that cannot check them loads.

vLLM loads its weights itself. When a model's source is signed and no fetch init container already
checked it (pvc://, oci://, file:// sources), the operator runs this as an init container on the
same read-only volume: the Ed25519 signature over ``sha256:<digest>``, then the file's digest.
One readable line and exit 1 when either fails, so ``kubectl describe pod`` says why.
"""

from __future__ import annotations

import os
from pathlib import Path

from inferflux.runtime.integrity import env_signature_problem, integrity_problem


def main() -> int:
    path = os.environ.get("INFERFLUX_MODEL_PATH", "")
    sha256 = os.environ.get("INFERFLUX_MODEL_SHA256", "")
    if not (path and sha256):
        print("verify: INFERFLUX_MODEL_PATH and INFERFLUX_MODEL_SHA256 are required")
        return 2
    problem = env_signature_problem(sha256, os.environ) or integrity_problem(Path(path), sha256)
    if problem:
        print(f"verify: {problem}")
        return 1
    print(f"verify: {path} verified")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
