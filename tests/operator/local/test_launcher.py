"""The launcher keeps processes and the routing table in line with the YAML, as the operator would.

Runtimes here are a stand-in HTTP process (tests/operator/local/standin_runtime.py) honouring the
runtime's env contract; the e2e test of ``inferctl up`` runs the real runtime and router.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferflux.crds import InferenceModel, Tenant
from inferflux.operator.local.auth import LocalAuth
from inferflux.operator.local.launcher import Commands, Launcher
from inferflux.operator.local.process import free_port
from inferflux.operator.local.resources import Resources
from inferflux.operator.render.labels import revision_hash

STANDIN = [sys.executable, str(Path(__file__).with_name("standin_runtime.py"))]
WEIGHTS = b"not really a gguf"


def model(name: str, weights: Path, replicas: int = 1, context: int = 512, **spec: Any) -> InferenceModel:
    return InferenceModel.model_validate(
        {
            "metadata": {"name": name},
            "spec": {
                "engine": "llamacpp",
                "replicas": replicas,
                "source": {"uri": f"file://{weights}", "sha256": hashlib.sha256(WEIGHTS).hexdigest()},
                "engineArgs": {"contextSize": context, "threads": 1},
                "rollout": {"progressDeadlineSeconds": 20},
                **spec,
            },
        }
    )


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "weights.gguf"
    path.write_bytes(WEIGHTS)
    return path


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    said: list[str] = []
    launched = Launcher(
        tmp_path / "run",
        tmp_path / "cache",
        "127.0.0.1",
        0,
        said.append,
        Commands(runtime=STANDIN),
        auth=LocalAuth(enabled=False, admin_port=free_port()),  # never the default 8001 another router holds
    )
    launched.run_dir.mkdir(parents=True)
    yield launched
    pids = [c.pid for d in launched.deployments.values() for c in d.children]
    launched.stop()
    for pid in pids:
        assert not _running(pid), f"process {pid} outlived stop()"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def routes(launcher: Launcher) -> dict[str, Any]:
    table: dict[str, Any] = json.loads(launcher.routes_file.read_text())["models"]
    return table


def served_env(url: str) -> dict[str, str]:
    with urllib.request.urlopen(f"{url}/v1/models", timeout=5) as response:
        env: dict[str, str] = json.load(response)["env"]
    return env


def test_apply_starts_ready_replicas_with_the_operator_env_and_routes_them(
    launcher: Launcher, weights: Path
) -> None:
    gemma = model("gemma", weights, replicas=2, servedName="gemma-small")
    assert launcher.apply(Resources(models=[gemma])) == []
    route = routes(launcher)["gemma-small"]
    assert route["revision"] == revision_hash(gemma)
    assert len(route["endpoints"]) == 2
    env = served_env(route["endpoints"][0]["url"])
    assert env["INFERFLUX_MODEL_PATH"] == str(weights)
    assert env["INFERFLUX_SERVED_NAME"] == "gemma-small"
    assert env["INFERFLUX_CONTEXT_SIZE"] == "512"
    assert env["INFERFLUX_MODEL_SHA256"] == hashlib.sha256(WEIGHTS).hexdigest()
    assert "INFERFLUX_ADMIN_TOKEN_FILE" not in env


def test_a_new_revision_replaces_the_old_one_blue_green(launcher: Launcher, weights: Path) -> None:
    launcher.apply(Resources(models=[model("gemma", weights)]))
    old = launcher.deployments["gemma"].children[0]
    changed = model("gemma", weights, context=1024)
    assert launcher.apply(Resources(models=[changed])) == []
    route = routes(launcher)["gemma"]
    assert route["revision"] == revision_hash(changed)
    assert [e["url"] for e in route["endpoints"]] != [old.url]
    assert served_env(route["endpoints"][0]["url"])["INFERFLUX_CONTEXT_SIZE"] == "1024"
    assert not old.alive()


def test_a_failed_candidate_is_rolled_back_and_the_old_revision_keeps_serving(
    launcher: Launcher, weights: Path
) -> None:
    launcher.apply(Resources(models=[model("gemma", weights)]))
    before = routes(launcher)["gemma"]
    problems = launcher.apply(Resources(models=[model("gemma", weights, context=999)]))
    assert len(problems) == 1
    assert "exited with status 3" in problems[0]
    assert "context size 999 is not supported" in problems[0]
    assert routes(launcher)["gemma"] == before
    assert launcher.deployments["gemma"].children[0].alive()


def test_replicas_scale_without_a_new_revision(launcher: Launcher, weights: Path) -> None:
    launcher.apply(Resources(models=[model("gemma", weights, replicas=1)]))
    first = launcher.deployments["gemma"].children[0]
    launcher.apply(Resources(models=[model("gemma", weights, replicas=2)]))
    assert len(routes(launcher)["gemma"]["endpoints"]) == 2
    launcher.apply(Resources(models=[model("gemma", weights, replicas=0)]))
    assert routes(launcher)["gemma"]["endpoints"] == []
    assert not first.alive()


def test_removing_a_model_stops_it_and_drops_its_route(launcher: Launcher, weights: Path) -> None:
    launcher.apply(Resources(models=[model("a", weights), model("b", weights)]))
    doomed = launcher.deployments["b"].children[0]
    launcher.apply(Resources(models=[model("a", weights)]))
    assert set(routes(launcher)) == {"a"}
    assert not doomed.alive()


def test_a_dead_replica_is_restarted(launcher: Launcher, weights: Path) -> None:
    launcher.apply(Resources(models=[model("gemma", weights)]))
    victim = launcher.deployments["gemma"].children[0]
    victim.popen.kill()
    victim.popen.wait()
    launcher.heal()
    replacement = launcher.deployments["gemma"].children[0]
    assert replacement is not victim
    assert replacement.alive()
    assert [e["url"] for e in routes(launcher)["gemma"]["endpoints"]] == [replacement.url]


def test_models_local_mode_cannot_serve_are_reported_not_started(launcher: Launcher, weights: Path) -> None:
    gpu = InferenceModel.model_validate(
        {
            "metadata": {"name": "big"},
            "spec": {"engine": "vllm", "source": {"uri": "pvc://m/x", "sha256": "0" * 64}},
        }
    )
    wrong_digest = model("bad", weights).model_copy(deep=True)
    assert wrong_digest.spec.source is not None
    wrong_digest.spec.source.sha256 = "1" * 64
    problems = launcher.apply(Resources(models=[gpu, wrong_digest]))
    assert problems[0] == "InferenceModel big: engine vllm needs a GPU node; not in local mode"
    assert (
        f"{weights} has sha256 {hashlib.sha256(WEIGHTS).hexdigest()}, the spec says {'1' * 64}" in problems[1]
    )
    assert "bad" not in launcher.deployments


def test_provider_models_are_routed_without_a_process(launcher: Launcher) -> None:
    provider = InferenceModel.model_validate(
        {
            "metadata": {"name": "gpt"},
            "spec": {"engine": "provider", "provider": {"name": "openai", "model": "gpt-4o-mini"}},
        }
    )
    assert launcher.apply(Resources(models=[provider])) == []
    assert routes(launcher)["gpt"]["provider"]["model"] == "gpt-4o-mini"
    assert launcher.deployments == {}


def test_the_router_port_must_be_free(tmp_path: Path) -> None:
    import socket

    from inferflux.operator.local.process import StartError

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        launcher = Launcher(tmp_path, tmp_path, "127.0.0.1", port, print)
        with pytest.raises(StartError, match=f"port {port} on 127.0.0.1 is already in use; choose another"):
            launcher.start_router()
    assert launcher.router is None


def test_a_failed_start_names_the_error_line_of_the_log(launcher: Launcher, weights: Path) -> None:
    problems = launcher.apply(Resources(models=[model("gemma", weights, context=999)]))
    assert problems[0].endswith("error: context size 999 is not supported by this stand-in")


def tenant(name: str, **spec: Any) -> Tenant:
    return Tenant.model_validate({"metadata": {"name": name}, "spec": spec})


def policy(launcher: Launcher) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(launcher.policy_file.read_text())
    return document


def test_tenants_become_the_policy_file_on_every_apply(launcher: Launcher) -> None:
    assert launcher.apply(Resources(tenants=[tenant("team-a", models=["m"]), tenant("team-b")])) == []
    tenants = policy(launcher)["tenants"]
    assert sorted(tenants) == ["team-a", "team-b"]
    assert tenants["team-a"]["models"] == ["m"]
    assert tenants["team-a"]["source"] == "resource"
    assert launcher.apply(Resources(tenants=[tenant("team-a", suspended=True)])) == []
    assert policy(launcher)["tenants"]["team-a"]["suspended"] is True
    assert "team-b" not in policy(launcher)["tenants"]


def test_tenant_problems_are_reported(launcher: Launcher) -> None:
    shared = {"certificates": {"subjects": ["CN=shared"]}}
    problems = launcher.apply(Resources(tenants=[tenant("a", **shared), tenant("b", **shared)]))
    assert [p.split(":")[0] for p in problems] == ["Tenant a", "Tenant b"]
    assert policy(launcher)["tenants"]["a"]["certificateSubjects"] == []


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_the_router_gets_the_policy_file_and_auth_settings(tmp_path: Path) -> None:
    auth = LocalAuth(enabled=True, admin_port=free_port())
    launcher = Launcher(tmp_path / "run", tmp_path, "127.0.0.1", free_port(), print, auth=auth)
    try:
        launcher.start_router([tenant("team-a")])
        assert launcher.router is not None
        env = _environ(launcher.router.pid)
    finally:
        launcher.stop()
    assert env["INFERFLUX_POLICY_FILE"] == str(launcher.policy_file.resolve())
    assert list(policy(launcher)["tenants"]) == ["team-a"]
    assert env["INFERFLUX_AUTH"] == "true"
    assert Path(env["INFERFLUX_AUTH_SECRET_FILE"]).stat().st_mode & 0o077 == 0
    assert (
        Path(env["INFERFLUX_ADMIN_TOKEN_FILE"]).read_text()
        == auth.admin_token_file(launcher.run_dir).read_text()
    )
    assert env["INFERFLUX_ADMIN_PORT"] == str(auth.admin_port)


def test_open_on_a_network_address_starts_nothing(tmp_path: Path) -> None:
    from inferflux.operator.local.auth import ExposureError

    launcher = Launcher(tmp_path / "run", tmp_path, "0.0.0.0", 0, print)
    with pytest.raises(ExposureError):
        launcher.start_router()
    assert launcher.router is None
    assert not (tmp_path / "run").exists()
