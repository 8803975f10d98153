"""Fair queueing in the real router against a backend of fixed capacity (`make bench-scheduling`).

The fake runtime streams one token every ``TOKEN_MS`` and model ``m`` has ``SLOTS`` slots, so the
model delivers a fixed number of tokens per second; every tenant below offers more than its share
(closed-loop clients, each re-sending at once, and after 50 ms on a 429). Two routers run side by
side on the same backend: the fair queue (``INFERFLUX_FAIRNESS=true``) and the old FIFO (``false``).

- **equal**: 4 tenants of weight 1 asking 8, 16, 24 and 32 tokens per request: each one's share of
  the tokens streamed (target 25 % ± 5 points);
- **weights**: weight 3 against weight 1: 75/25 ± 5 points;
- **flood**: a tenant with 10x the clients of another, same weight: 50/50 ± 5 points;
- **priority**: a priority-5 tenant's TTFT p95, one request at a time, on the idle model and under a
  sheddable (priority -1) flood; target <= 1.5x idle (issue #20). With every slot given to the flood
  a high request still waits for the first running one to end (the runtime does not preempt), so a
  third router keeps one slot of four back from sheddable work (INFERFLUX_FAIRNESS_SHEDDABLE_SLOTS);
- **saturation**: requests/s through each router at saturation (64 slots, tiny answers); target:
  the fair queue >= 0.9x the FIFO.

With ``--runtime-model PATH`` (a GGUF file) it runs against the real runtime (llama.cpp, 2 parallel
sequences) instead of the fake backend: the 4 equal tenants, and the priority scenario with the
runtime's preemption (runtime_image/preemption.py): with the default settings the flood fills both
slots, and a priority-5 request is sent past them (sheddable requests do not count against its
slots, INFERFLUX_FAIRNESS_RUNTIME_PREEMPTION) and takes a slot from a sheddable one in the runtime.
A fourth router with that setting off is the baseline: there the high request waits in the router
for a flood request to end.

    python tests/bench/bench_scheduling.py [--seconds 20] [--runtime-model PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
MOCK = ROOT / "tests" / "router" / "mock_openai.py"
LAUNCHER = Path(__file__).with_name("tenants_router.py")
PY = sys.executable
CONTENT = re.compile(rb'"content":"[^"]')  # a streamed chunk carrying text
TOKEN_MS = 10
SLOTS = 4
WARMUP = 2.0
SCHEDULING = {
    "t1": {}, "t2": {}, "t3": {}, "t4": {},
    "heavy": {"weight": 3}, "light": {},
    "flood": {}, "calm": {},
    "high": {"priority": 5}, "bulk": {"priority": -1},
}  # fmt: skip


def start(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(1200):  # two routers importing at once on a busy machine take a while
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


class Load:
    """Closed-loop clients against one router, counting streamed tokens per tenant in a window."""

    def __init__(self, url: str, keys: dict[str, str], session: aiohttp.ClientSession) -> None:
        self.url = url + "/v1/chat/completions"
        self.keys = keys
        self.session = session
        self.failures = 0  # connection errors (a keep-alive connection closed under us)
        self.used: list[tuple[str, float, int]] = []  # (tenant, when, usage.total_tokens) of each answer

    async def one(self, tenant: str, max_tokens: int, tokens: list[float] | None = None) -> tuple[int, float]:
        """One streamed request: its status and TTFT; ``tokens`` gets each token's arrival time."""
        document = {
            "model": "m",
            "messages": [{"role": "user", "content": "go"}],
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        headers = {"authorization": f"Bearer {self.keys[tenant]}"}
        sent = time.monotonic()
        first = 0.0
        try:
            async with self.session.post(self.url, json=document, headers=headers) as response:
                if response.status != 200:
                    await response.read()
                    return response.status, 0.0
                async for line in response.content:
                    if CONTENT.search(line):
                        now = time.monotonic()
                        first = first or now - sent
                        if tokens is not None:
                            tokens.append(now)
                    elif tokens is not None and b'"usage":{' in line:  # prompt + completion, as scheduled
                        usage = json.loads(line.removeprefix(b"data: "))["usage"]
                        self.used.append((tenant, time.monotonic(), usage["total_tokens"]))
        except aiohttp.ClientError:
            self.failures += 1
            return 0, 0.0
        return 200, first

    async def contest(self, plan: dict[str, tuple[int, int]], seconds: float) -> dict[str, int]:
        """Each tenant runs ``clients`` loops asking ``max_tokens``; tokens per tenant after warm-up."""
        stop = time.monotonic() + WARMUP + seconds
        arrivals: dict[str, list[float]] = {tenant: [] for tenant in plan}

        async def loop(tenant: str, max_tokens: int) -> None:
            while time.monotonic() < stop:
                status, _ = await self.one(tenant, max_tokens, arrivals[tenant])
                if status != 200:
                    await asyncio.sleep(0.05)

        await asyncio.gather(
            *(
                loop(tenant, max_tokens)
                for tenant, (clients, max_tokens) in plan.items()
                for _ in range(clients)
            )
        )
        begin = stop - seconds
        self.window = (begin, stop)
        return {tenant: sum(begin <= t < stop for t in times) for tenant, times in arrivals.items()}

    def used_in_window(self) -> dict[str, int]:
        """Prompt + completion tokens (the usage the queue counts) of answers ended in the last window."""
        begin, stop = self.window
        totals: dict[str, int] = collections.defaultdict(int)
        for tenant, when, tokens in self.used:
            if begin <= when < stop:
                totals[tenant] += tokens
        return dict(sorted(totals.items()))

    async def ttft(self, tenant: str, seconds: float) -> list[float]:
        """TTFTs of one request at a time, for ``seconds``."""
        stop = time.monotonic() + seconds
        found = []
        while time.monotonic() < stop:
            status, first = await self.one(tenant, 4)
            if status == 200:
                found.append(first)
            await asyncio.sleep(0.05)
        return found

    async def saturation(self, seconds: float, clients: int = 96) -> float:
        """Requests/s of tiny non-streamed answers from model ``fast`` with every slot busy."""
        document = {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        headers = {"authorization": f"Bearer {self.keys['t1']}"}
        url = self.url
        stop = time.monotonic() + seconds
        done = 0

        async def loop() -> None:
            nonlocal done
            while time.monotonic() < stop:
                try:
                    async with self.session.post(url, json=document, headers=headers) as response:
                        await response.read()
                        done += response.status == 200
                except aiohttp.ClientError:
                    self.failures += 1

        await asyncio.gather(*(loop() for _ in range(clients)))
        return done / seconds


def shares(tally: dict[str, int]) -> dict[str, float]:
    total = sum(tally.values()) or 1
    return {tenant: count / total for tenant, count in tally.items()}


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 2 else float("nan")


async def run(
    seconds: float, runtime_model: str = "", priority_only: bool = False, repeats: int = 2
) -> dict[str, Any]:
    from inferflux.crds.policy import PolicySnapshot, TenantPolicy
    from inferflux.crds.scheduling import Scheduling
    from inferflux.router.identity import api_keys

    work = Path(tempfile.mkdtemp(prefix="bench-scheduling-"))
    mock_port, fair_port, fifo_port, reserve_port, preempt_port = 18940, 18941, 18942, 18943, 18944
    mock_url = f"http://127.0.0.1:{mock_port}"
    routes = {"version": 1, "models": {
        "m": {"name": "m", "engine": "llamacpp", "maxConcurrency": SLOTS, "maxQueue": 256,
              "endpoints": [{"url": mock_url}]},
        "fast": {"name": "fast", "engine": "llamacpp", "maxConcurrency": 64, "maxQueue": 1024,
                 "endpoints": [{"url": mock_url}]},
    }}  # fmt: skip
    (work / "routes.json").write_text(json.dumps(routes))
    secret = work / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    hasher = api_keys.load_hasher(str(secret))
    snapshot = PolicySnapshot(
        tenants={
            name: TenantPolicy(name=name, scheduling=Scheduling(**rule)) for name, rule in SCHEDULING.items()
        }
    )
    keys, records = {}, []
    for name in SCHEDULING:
        key, record = api_keys.generate(hasher, name)
        keys[name] = key
        records.append(record.model_dump(mode="json", by_alias=True))
    setup = work / "setup.json"
    setup.write_text(
        json.dumps({"snapshot": snapshot.model_dump(mode="json", by_alias=True), "keys": records})
    )
    if runtime_model:  # the real runtime stands in for the fake one, on the same port
        runtime_env = {
            "INFERFLUX_MODEL_PATH": runtime_model,
            "INFERFLUX_HOST": "127.0.0.1",
            "INFERFLUX_PORT": str(mock_port),
            "INFERFLUX_SERVED_NAME": "m",
            "INFERFLUX_PARALLEL": "2",
            "INFERFLUX_CONTEXT_SIZE": "2048",
            "INFERFLUX_THREADS": "1",
        }
        routes["models"]["m"]["maxConcurrency"] = 2
        (work / "routes.json").write_text(json.dumps(routes))
        mock = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block; its log is not measured
            [PY, "-m", "inferflux.runtime"],
            env={**os.environ, **runtime_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    else:
        mock = start([PY, str(MOCK), str(mock_port), str(TOKEN_MS)])
    common = {
        "INFERFLUX_ADMIN_PORT": "0",
        "INFERFLUX_ROUTES_FILE": str(work / "routes.json"),
        "INFERFLUX_AUTH_SECRET_FILE": str(secret),
        "INFERFLUX_GUARDRAILS": "false",
        "INFERFLUX_LOG_LEVEL": "warning",
    }
    routers = {
        "fair": start([PY, str(LAUNCHER), str(setup)], {**common, "INFERFLUX_ROUTER_PORT": str(fair_port)}),
        "fifo": start(
            [PY, str(LAUNCHER), str(setup)],
            {**common, "INFERFLUX_ROUTER_PORT": str(fifo_port), "INFERFLUX_FAIRNESS": "false"},
        ),
        "reserve": start(
            [PY, str(LAUNCHER), str(setup)],
            {
                **common,
                "INFERFLUX_ROUTER_PORT": str(reserve_port),
                "INFERFLUX_FAIRNESS_SHEDDABLE_SLOTS": "0.75",
            },
        ),
    }
    if runtime_model:
        no_preemption = {
            **common,
            "INFERFLUX_ROUTER_PORT": str(preempt_port),
            "INFERFLUX_FAIRNESS_RUNTIME_PREEMPTION": "false",
        }
        routers["nopreempt"] = start([PY, str(LAUNCHER), str(setup)], no_preemption)
    result: dict[str, Any] = {"seconds": seconds}
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            loads = {}
            ports = {"fair": fair_port, "fifo": fifo_port, "reserve": reserve_port}
            if runtime_model:
                ports["nopreempt"] = preempt_port
            for name, port in ports.items():
                await wait_ready(f"http://127.0.0.1:{port}/readyz")
                loads[name] = Load(f"http://127.0.0.1:{port}", keys, session)
            equal = {"t1": (8, 8), "t2": (8, 16), "t3": (8, 24), "t4": (8, 32)}
            if runtime_model:
                await wait_ready(f"{mock_url}/readyz")
            for name in ("fair", "fifo") if not priority_only else ():
                result[f"equal/{name}"] = shares(await loads[name].contest(equal, seconds))
                result[f"equal-total/{name}"] = shares(loads[name].used_in_window())
            if runtime_model:
                # Idle, then under each flood, `repeats` times over: drift on the machine during the
                # run falls on every column, not on one.
                samples: dict[str, list[float]] = {"idle": [], "fair": [], "nopreempt": []}
                block = seconds / repeats
                for _ in range(repeats):
                    samples["idle"] += await loads["fair"].ttft("high", block / 2)
                    for name in ("fair", "nopreempt"):
                        flood = asyncio.ensure_future(loads[name].contest({"bulk": (8, 32)}, block))
                        await asyncio.sleep(WARMUP)
                        samples[name] += await loads[name].ttft("high", block - 1)
                        await flood
                for name, found in samples.items():
                    result[f"ttft/{name}"] = p95(found)
                    result[f"samples/{name}"] = len(found)
                async with session.get(f"{mock_url}/metrics") as response:
                    text = await response.text()
                found = re.search(r"^inferflux_runtime_sequences_preempted_total (\S+)$", text, re.M)
                result["preempted"] = float(found.group(1)) if found else 0.0
                return result
            result["weights/fair"] = shares(
                await loads["fair"].contest({"heavy": (8, 16), "light": (8, 16)}, seconds)
            )
            for name in ("fair", "fifo"):
                result[f"flood/{name}"] = shares(
                    await loads[name].contest({"flood": (80, 16), "calm": (8, 16)}, seconds)
                )
            idle = await loads["fair"].ttft("high", seconds / 2)
            result["ttft/idle"] = p95(idle)
            for name in ("fair", "fifo", "reserve"):
                flood = asyncio.ensure_future(loads[name].contest({"bulk": (40, 16)}, seconds))
                await asyncio.sleep(WARMUP)
                result[f"ttft/{name}"] = p95(await loads[name].ttft("high", seconds - 1))
                await flood
            rates: dict[str, list[float]] = {"fair": [], "fifo": []}
            for _ in range(3):
                for name in ("fifo", "fair"):
                    rates[name].append(await loads[name].saturation(4.0))
            result["rps"] = {name: statistics.median(values) for name, values in rates.items()}
            result["failures"] = {name: load.failures for name, load in loads.items()}
            result["exited"] = {name: process.poll() for name, process in routers.items()}
    finally:
        for process in (*routers.values(), mock):
            process.terminate()
            process.wait(10)
    return result


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--runtime-model", default="", help="a GGUF file: the real runtime, equal tenants only"
    )
    parser.add_argument(
        "--priority-only", action="store_true", help="with --runtime-model: only the high-priority TTFT"
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="with --runtime-model: idle-then-flood blocks of the TTFT run"
    )
    args = parser.parse_args()
    if args.priority_only and not args.runtime_model:
        parser.error("--priority-only needs --runtime-model")
    result = asyncio.run(run(args.seconds, args.runtime_model, args.priority_only, args.repeats))
    backend = "the real runtime, 2 slots" if args.runtime_model else f"{SLOTS} slots, {TOKEN_MS} ms/token"
    print(f"token shares over {args.seconds:g} s at saturation ({backend})")
    print(f"{'scenario':<22}{'fair queue':<40}{'FIFO (before)':<40}target")

    def row(values: dict[str, float]) -> str:
        return " ".join(f"{tenant}={share:.1%}" for tenant, share in values.items())

    if not args.priority_only:
        equal_ok = all(abs(share - 0.25) <= 0.05 for share in result["equal/fair"].values())

        print(
            f"{'4 equal (8..32 tok)':<22}{row(result['equal/fair']):<40}{row(result['equal/fifo']):<40}"
            f"25 % ± 5 {verdict(equal_ok)}"
        )
        total_ok = all(abs(share - 0.25) <= 0.05 for share in result["equal-total/fair"].values())
        print(
            f"{'  prompt+completion':<22}{row(result['equal-total/fair']):<40}"
            f"{row(result['equal-total/fifo']):<40}"
            f"25 % ± 5 {verdict(total_ok)}"
        )
    if args.runtime_model:
        idle, fair, off = result["ttft/idle"], result["ttft/fair"], result["ttft/nopreempt"]
        print(
            f"{'high TTFT p95':<22}{f'{fair * 1000:.0f} ms ({fair / idle:.1f}x idle)':<40}"
            f"{f'{off * 1000:.0f} ms ({off / idle:.1f}x idle)':<40}"
            f"<= 1.5x idle ({idle * 1000:.0f} ms) {verdict(fair <= 1.5 * idle)}"
        )
        print(
            "  (left: default settings, the runtime preempts; right: "
            "INFERFLUX_FAIRNESS_RUNTIME_PREEMPTION=false); "
            f"sequences preempted in the runtime: {result['preempted']:.0f}"
        )
        counts = ", ".join(f"{name} {result[f'samples/{name}']}" for name in ("idle", "fair", "nopreempt"))
        print(f"  samples, {args.repeats} idle-then-flood blocks: {counts}")
        return 0
    weights_ok = abs(result["weights/fair"]["heavy"] - 0.75) <= 0.05
    print(f"{'weights 3:1':<22}{row(result['weights/fair']):<40}{'-':<40}75 % ± 5 {verdict(weights_ok)}")
    flood = result["flood/fair"]["flood"]
    print(
        f"{'10x flood vs calm':<22}{row(result['flood/fair']):<40}{row(result['flood/fifo']):<40}"
        f"flood <= 55 % {verdict(flood <= 0.55)}"
    )
    idle = result["ttft/idle"]
    fair, fifo, reserve = result["ttft/fair"], result["ttft/fifo"], result["ttft/reserve"]
    print(
        f"{'high TTFT p95':<22}{f'{fair * 1000:.0f} ms ({fair / idle:.1f}x idle)':<40}"
        f"{f'{fifo * 1000:.0f} ms ({fifo / idle:.1f}x idle)':<40}"
        f"<= 1.5x idle ({idle * 1000:.0f} ms) {verdict(fair <= 1.5 * idle)}"
    )
    kept = f"{reserve * 1000:.0f} ms ({reserve / idle:.1f}x idle)"
    print(f"{'  1 of 4 slots kept':<22}{kept:<40}{'-':<40}<= 1.5x idle {verdict(reserve <= 1.5 * idle)}")
    rps = result["rps"]
    ratio = rps["fair"] / rps["fifo"]
    fair_rps, fifo_rps = f"{rps['fair']:.0f} ({ratio:.2f}x)", f"{rps['fifo']:.0f}"
    print(f"{'saturation req/s':<22}{fair_rps:<40}{fifo_rps:<40}>= 0.9x {verdict(ratio >= 0.9)}")
    print(f"connection errors: {result['failures']}; router exit codes (None: running): {result['exited']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
