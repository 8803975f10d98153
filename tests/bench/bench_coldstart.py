"""Time from `make run` on a fresh clone to the first answer (`make bench-coldstart`).

Clones the committed HEAD of this repository into a temporary folder (what a newcomer gets), runs
`make run` there and reads its output until `inferctl up` prints that the router is up, then asks
the default chat model "What is the capital of France?" through the router and checks the answer.

Two cells, run one after the other in the same run:

- **cold**: empty pip, uv and InferFlux caches (``XDG_CACHE_HOME``: everything downloaded, llama.cpp
  compiled from its sdist);
- **warm**: a second fresh clone using the caches the cold cell just filled (a new virtual
  environment, nothing compiled).

The targets (issue 26) are 5 minutes cold and 30 s warm. Run it alone: compiling llama.cpp takes
both cores, and anything beside it lengthens the cold cell.

    python tests/bench/bench_coldstart.py              # cold, then warm
    python tests/bench/bench_coldstart.py --warm-only  # warm, with this machine's own caches
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UP_MARKER = "InferFlux is up:"
QUESTION = "What is the capital of France?"


def fresh_clone(into: Path) -> Path:
    """Clone HEAD (not the work tree): a newcomer gets only what is committed."""
    target = into / "inferflux"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    return target


def ask(port: int) -> str:
    body = json.dumps(
        {
            "model": "smollm2-135m",
            "messages": [{"role": "user", "content": QUESTION}],
            "max_tokens": 24,
            "temperature": 0,
        }
    ).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return str(json.load(response)["choices"][0]["message"]["content"])


def time_make_run(
    clone: Path, env: dict[str, str], port: int, log: Path, limit_s: float
) -> tuple[float, str]:
    """Seconds from `make run` to "InferFlux is up", and the answer to QUESTION."""
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"UP_ARGS=--port {port}"],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:
                out.write(line)
                out.flush()
                if UP_MARKER in line:
                    return time.monotonic() - started, ask(port)
                if time.monotonic() - started > limit_s:
                    break
            else:  # its output ended: `make run` stopped before it was up
                out.flush()
                tail = "".join(log.read_text().splitlines(keepends=True)[-5:])
                raise SystemExit(f"bench-coldstart: `make run` stopped before it was up:\n{tail}")
            raise SystemExit(f"bench-coldstart: `make run` did not come up within {limit_s:.0f} s")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def cell(name: str, caches: Path, port: int, workdir: Path, limit_s: float) -> tuple[str, float, str]:
    env = dict(os.environ)
    # XDG_CACHE_HOME holds the Makefile's llama.cpp wheels (inferflux/wheels) as well.
    env.update(PIP_CACHE_DIR=str(caches / "pip"), UV_CACHE_DIR=str(caches / "uv"), XDG_CACHE_HOME=str(caches))
    clone = fresh_clone(workdir / name)
    print(f"bench-coldstart: {name}: make run in {clone}", flush=True)
    seconds, answer = time_make_run(clone, env, port, workdir / f"{name}.log", limit_s)
    print(f"bench-coldstart: {name}: up in {seconds:.0f} s; answered {answer!r}", flush=True)
    return name, seconds, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-only", action="store_true", help="only warm, with this machine's caches")
    parser.add_argument("--port", type=int, default=18631)
    parser.add_argument("--limit", type=float, default=1800.0, help="give up on a cell after this long (s)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as tmp:
        workdir = Path(tmp)
        if args.warm_only:
            home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
            results.append(cell("warm", home, args.port, workdir, args.limit))
        else:
            caches = workdir / "caches"
            results.append(cell("cold", caches, args.port, workdir, args.limit))
            results.append(cell("warm", caches, args.port, workdir, args.limit))
    targets = {"cold": 300.0, "warm": 30.0}
    print(f"\n{'cell':<6} {'make run → up':>14} {'target':>8}  answer")
    for name, seconds, answer in results:
        verdict = "met" if seconds <= targets[name] else "NOT met"
        print(f"{name:<6} {seconds:>12.0f} s {targets[name]:>6.0f} s  {verdict}; {answer.strip()[:60]!r}")
    if any("paris" not in answer.lower() for _, _, answer in results):
        sys.exit("bench-coldstart: the default model did not answer Paris")


if __name__ == "__main__":
    main()
