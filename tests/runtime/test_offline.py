"""The runtime serves with no network at all: a fresh network namespace with only loopback up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = r"""
set -e
ip link set lo up
test "$(ip -o link show | grep -vc ' lo:')" = 0
"$PY" -m inferflux.runtime --host 127.0.0.1 --port 18181 --parallel 2 --context-size 1024 --threads 2 \
  --model-path "$MODEL" --served-name offline &
server=$!
trap 'kill $server' EXIT
"$PY" - <<'EOF_PY'
import json, time, urllib.request, urllib.error
for _ in range(600):
    try:
        if urllib.request.urlopen("http://127.0.0.1:18181/readyz", timeout=2).status == 200:
            break
    except (urllib.error.URLError, ConnectionError):
        time.sleep(0.3)
req = urllib.request.Request("http://127.0.0.1:18181/v1/completions", method="POST",
    data=json.dumps({"prompt": "The capital of France is", "max_tokens": 8, "temperature": 0}).encode())
print(json.dumps(json.load(urllib.request.urlopen(req, timeout=120))))
EOF_PY
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
def test_serves_inside_a_network_namespace_without_network(model_path: Path) -> None:
    env = dict(os.environ, PY=sys.executable, MODEL=str(model_path), HF_HUB_OFFLINE="0")
    result = subprocess.run(
        ["unshare", "--net", "bash", "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"model": "offline"' in result.stdout
    assert '"completion_tokens": 8' in result.stdout
