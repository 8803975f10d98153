"""Every command of docs/quickstart-*.md, run in order on a fresh clone of HEAD (issue 24, item 4).

The commands are read from the Markdown (``quickstart_doc.parse``; the markers are explained
there), so the test runs exactly what a reader copies. Each quickstart gets its own ``git clone`` of
the committed HEAD into a temporary folder: uncommitted edits are not what a newcomer gets.

Open substitutions, all made here in code (docs/testing.md, "Quickstarts", lists them):

- Ports: the documented 8000 (router) and 8001 (admin API) become free ports
  (``quickstart_doc.with_ports``: ``127.0.0.1:8000`` in URLs, ``UP_ARGS`` on ``make run``), so the
  test never collides with another stack on this machine.
- Caches: the commands run with this machine's uv, pip and npm caches at their usual places (or
  ``UV_CACHE_DIR``, ``PIP_CACHE_DIR``, ``npm_config_cache`` when set), which ``make install``
  fills, and the llama.cpp wheel ``make install`` compiled into ``~/.cache/inferflux/wheels``
  (helm/llama_wheel.py): ``make run`` in the clone is then the warm install a returning user sees.
  The clone's own ``.venv`` is new.
- Cluster: the cluster is the e2e control plane (``cluster_fixture.LocalCluster``: a real
  kube-apiserver, KWOK playing the kubelet), a new one for this test, like a first install; its
  admin kubeconfig is ``KUBECONFIG`` and the pinned ``kubectl`` and ``helm`` of .cache/cluster-bin
  come first on ``PATH``. KWOK runs no container, so two things a cluster does by itself are done
  here after the step that needs them: the operator runs as a local process under the chart's
  ServiceAccount, with the chart Deployment's command and env (as e2e/test_delivery.py does), once
  the chart is installed; and a PersistentVolume is bound to the claim ``models`` (a storage
  provisioner's job). The steps marked ``not-run`` (image build and push, copying the model file
  into the claim, the port-forwarded request) are listed, not run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cluster_fixture import LocalCluster, e2e_suite, free_port
from quickstart_doc import Step, parse, with_ports

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
#: Environment a reader's shell would not have: the outer make's, a virtualenv's, InferFlux settings.
FOREIGN_ENV = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "VIRTUAL_ENV", "PYTHONPATH", "KUBECONFIG")
STOP_SECONDS = 60.0
#: pytest's per-test limit for the local-mode quickstarts: warm, under a minute; with
#: no llama.cpp wheel built on this machine yet, `make run` compiles it first (about 10 minutes).
LOCAL_TIMEOUT = 1500


def reader_env() -> dict[str, str]:
    """This machine's environment as a new shell has it: no virtualenv, no outer make, no settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in FOREIGN_ENV and not k.startswith(("INFERFLUX_", "PYTEST_"))
    }
    # pytest runs from the repository's .venv; the reader's `python3` is the system's.
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not Path(p).is_relative_to(REPO)]
    env["PATH"] = os.pathsep.join(path)
    return env


def fresh_clone(into: Path) -> Path:
    """``git clone`` of HEAD: only what is committed, as a newcomer gets it."""
    target = into / "inferflux"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True, timeout=120)
    return target


@dataclass
class Background:
    """A step left running: its process group and every line it printed so far."""

    step: Step
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.process.poll() is not None:
                raise AssertionError(f"{self.step.label()} exited {self.process.returncode} before "
                                     f"printing {text!r}:\n{tail(self.output())}")  # fmt: skip
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.step.label()}: no {text!r} after {timeout:.0f} s:\n{tail(self.output())}"
                )
            time.sleep(0.2)

    def interrupt(self) -> None:
        """Ctrl-C, as a terminal sends it: SIGINT to the whole process group; then wait."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.step.label()} still running {STOP_SECONDS:.0f} s after Ctrl-C"
            ) from None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Report:
    """What a quickstart run did: the steps run (with their time; a background step's is its time to
    the awaited line), and the steps listed as not run with their reasons."""

    ran: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def show(self, name: str) -> None:
        """Print what ran, how long it took, and what it printed (seen with ``pytest -s``)."""
        print(f"\n{name}: {self.seconds:.0f} s, {len(self.ran)} steps run")
        for label, output in zip(self.ran, self.outputs, strict=True):
            print(f"--- {label}\n{tail(output, 20)}")
        for label in self.not_run:
            print(f"--- not run: {label}")


class QuickstartRun:
    """Runs the steps of one quickstart in a clone; ``after`` acts (openly) once a named step ran."""

    def __init__(
        self,
        clone: Path,
        env: Mapping[str, str],
        ports: Mapping[int, int],
        after: Mapping[str, Callable[[], None]] | None = None,
    ) -> None:
        self.clone = clone
        self.env = dict(env)
        self.ports = dict(ports)
        self.after = dict(after or {})
        self.running: dict[str, Background] = {}
        self.report = Report()

    def __enter__(self) -> QuickstartRun:
        return self

    def __exit__(self, *exc: object) -> None:
        for background in self.running.values():
            if background.process.poll() is None:
                with contextlib.suppress(AssertionError):
                    background.interrupt()

    def run_all(self, steps: list[Step]) -> Report:
        began = time.monotonic()
        for step in steps:
            if step.kind == "not-run":
                self.report.not_run.append(f"{step.label()} ({step.reason})")
                continue
            started = time.monotonic()
            getattr(self, step.kind.replace("-", "_"))(step)
            self.report.ran.append(f"{step.label()} [{time.monotonic() - started:.1f} s]")
            if step.name in self.after:
                self.after.pop(step.name)()
        assert not self.after, f"no step named {sorted(self.after)}: the quickstart changed"
        self.report.seconds = time.monotonic() - began
        return self.report

    def _command(self, step: Step) -> list[str]:
        return ["bash", "-e", "-o", "pipefail", "-c", with_ports(step.code, self.ports)]

    def run(self, step: Step) -> None:
        try:
            done = subprocess.run(
                self._command(step), cwd=self.clone, env=self.env, stdin=subprocess.DEVNULL,
                capture_output=True, text=True, timeout=step.timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as late:
            raise AssertionError(f"{step.label()}: still running after {step.timeout:.0f} s") from late
        output = done.stdout + done.stderr
        self.report.outputs.append(output)
        assert done.returncode == 0, f"{step.label()} exited {done.returncode}:\n{tail(output)}"
        check_expectations(step, output)

    def background(self, step: Step) -> None:
        process = subprocess.Popen(
            self._command(step), cwd=self.clone, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        background = Background(step, process)
        assert process.stdout is not None
        threading.Thread(
            target=lambda out=process.stdout: background.lines.extend(iter(out.readline, "")), daemon=True
        ).start()
        self.running[step.name] = background
        background.wait_for_line(step.until, step.timeout)
        self.report.outputs.append(background.output())
        check_expectations(step, background.output())

    def interrupt(self, step: Step) -> None:
        background = self.running[step.target]
        background.interrupt()
        self.report.outputs.append(background.output())
        check_expectations(step, background.output())


def check_expectations(step: Step, output: str) -> None:
    missing = [text for text in step.expects if text not in output]
    assert not missing, f"{step.label()}: {missing} not in its output:\n{tail(output)}"


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def wait_until(what: str, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)
    return result


def steps_of(name: str) -> list[Step]:
    path = DOCS / name
    return parse(path.read_text(), path.name)


@pytest.fixture
def workdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="inferflux-quickstart-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_local_quickstart(name: str, workdir: Path) -> Report:
    """A quickstart against local mode: ``make run`` in a fresh clone, on free ports."""
    clone = fresh_clone(workdir)
    ports = {8000: free_port(), 8001: free_port()}
    with QuickstartRun(clone, reader_env(), ports) as run:
        report = run.run_all(steps_of(name))
    # Ctrl-C stopped everything: nothing serves the router's port any more.
    wait_until(f"port {ports[8000]} to be free", lambda: port_is_free(ports[8000]), timeout=30)
    report.show(name)
    return report


@pytest.mark.timeout(LOCAL_TIMEOUT)
def test_quickstart_local_on_a_fresh_clone(workdir: Path) -> None:
    report = run_local_quickstart("quickstart-local.md", workdir)
    assert report.not_run == []


@pytest.mark.timeout(LOCAL_TIMEOUT)
def test_quickstart_sdk_on_a_fresh_clone(workdir: Path) -> None:
    report = run_local_quickstart("quickstart-sdk.md", workdir)
    assert report.not_run == []


# --------------------------------------------------------------------------------------------
# The cluster quickstart.

CLAIM = "models"
RELEASE_NAMESPACE = "inferflux-system"


def bind_claim(cluster: LocalCluster) -> None:
    """What a storage provisioner does for the claim ``models``: a volume bound to it."""
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "quickstart-models"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            # Never mounted: KWOK starts no container. The path only makes the volume valid.
            "hostPath": {"path": "/var/lib/inferflux-quickstart-models"},
            "claimRef": {"namespace": "default", "name": CLAIM},
        },
    }
    cluster.admin.kubectl("apply", "-f", "-", input=json.dumps(volume))

    def bound() -> bool:
        phase = cluster.admin.kubectl("get", "pvc", CLAIM, "-o", "jsonpath={.status.phase}").stdout
        return phase == "Bound"

    wait_until(f"the claim {CLAIM} bound", bound)


def cluster_env(cluster: LocalCluster) -> dict[str, str]:
    """The reader's shell, pointed at the e2e cluster with the pinned kubectl and helm first."""
    env = reader_env()
    tools = cluster.admin.env()
    env.update({k: v for k, v in tools.items() if k == "KUBECONFIG" or k.startswith(("HELM_", "KUBECACHE"))})
    env["PATH"] = os.pathsep.join([str(cluster.bin_dir), env["PATH"]])
    return env


def test_quickstart_cluster_on_a_fresh_clone(workdir: Path) -> None:
    clone = fresh_clone(workdir)
    delivery = e2e_suite("test_delivery.py")  # its operator_from_chart, Cli and rbac_denials
    with LocalCluster() as cluster, contextlib.ExitStack() as operator:
        cli = delivery.Cli(cluster.admin.kubeconfig)
        log = workdir / "operator.log"
        before_clean_up: list[int] = []
        after = {
            "install": lambda: operator.enter_context(delivery.operator_from_chart(cli, workdir)),
            "claim": lambda: bind_claim(cluster),
            "tenant": lambda: before_clean_up.append(log.stat().st_size),
        }
        with QuickstartRun(clone, cluster_env(cluster), {}, after) as run:
            report = run.run_all(steps_of("quickstart-cluster.md"))
        operator.close()
        # Up to the clean-up: `helm uninstall` removes the operator's RBAC while this stand-in for
        # its Deployment still runs (in a cluster the pod goes with the release), so a call it makes
        # in that moment is denied. The clean-up itself is checked by what it leaves below.
        denials = delivery.rbac_denials(log, before_clean_up[0])
        assert not denials, denials
        # The clean-up step ran: the release and the model are gone.
        assert cluster.admin.kubectl("get", "inferencemodels", "-A", "-o", "name").stdout == ""
        listed = cluster.admin.helm("list", "-n", RELEASE_NAMESPACE, "-q").stdout
        assert listed.strip() == ""
    report.show("quickstart-cluster.md")
    assert len(report.not_run) == 3, report.not_run  # images, the model file, the request
