"""The local launcher: a router process and runtime processes kept in line with InferenceModel YAML.

Tenants in the same YAML are compiled by the operator's own function into the policy snapshot the
router reads from a file (``INFERFLUX_POLICY_FILE``), rewritten atomically on every apply.

It does what the operator and Kubernetes do in a cluster, on one machine: ``apply`` computes each
model's revision with the operator's hash, starts the replicas of a new revision beside the old
ones, moves traffic in one write of the routing table once they are all Ready (blue/green), then
stops the old ones. A candidate that fails to start is removed and the old revision keeps serving
(the automatic rollback). Replicas that die are restarted, as a Deployment would.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from inferflux.crds.inferencemodel import InferenceModel
from inferflux.crds.tenant import Tenant
from inferflux.operator.local import plan
from inferflux.operator.local.auth import LocalAuth
from inferflux.operator.local.process import Child, StartError, free_port, port_in_use
from inferflux.operator.local.resources import Resources
from inferflux.operator.local.sources import SourceError, materialise
from inferflux.operator.render.policy import compile_policy, policy_json

Say = Callable[[str], None]
ROUTER_READY_SECONDS = 60.0
HOLD_SECONDS = 60.0


@dataclass
class Deployment:
    """The running replicas of one model's active revision."""

    model: InferenceModel
    revision: str
    children: list[Child] = field(default_factory=list)


@dataclass
class Commands:
    """How to start the two kinds of process (the real modules, unless a test says otherwise)."""

    runtime: list[str] = field(default_factory=lambda: [sys.executable, "-m", "inferflux.runtime"])
    router: list[str] = field(default_factory=lambda: [sys.executable, "-m", "inferflux.router"])


class Launcher:
    """Owns every child process of one ``inferctl up``; ``stop`` leaves none behind."""

    def __init__(
        self,
        run_dir: Path,
        model_cache: Path,
        host: str,
        port: int,
        say: Say,
        commands: Commands | None = None,
        secrets: Path | None = None,
        auth: LocalAuth | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.model_cache = model_cache
        self.host = host
        self.port = port
        self.say = say
        self.commands = commands or Commands()
        self.secrets = secrets
        self.auth = auth or LocalAuth(enabled=False)
        self.routes_file = run_dir / "routes.json"
        self.policy_file = run_dir / "policy.json"
        self.models: list[InferenceModel] = []
        self.deployments: dict[str, Deployment] = {}
        self.router: Child | None = None

    @property
    def url(self) -> str:
        """The router's base URL."""
        return f"http://{self.host}:{self.port}"

    def start_router(self, tenants: list[Tenant] | None = None) -> float:
        """Start the router on an empty table and ``tenants``' policy, and wait until it is ready.

        Raises `ExposureError` before anything starts when auth is off on a non-loopback address.
        """
        auth_env = self.auth.router_env(self.run_dir, self.host)
        if port_in_use(self.host, self.port):
            raise StartError(f"port {self.port} on {self.host} is already in use; choose another with --port")
        admin = self.auth.admin_port
        if port_in_use(auth_env["INFERFLUX_ADMIN_HOST"], admin):
            raise StartError(f"admin port {admin} is already in use; choose another with --admin-port")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.write_routes()
        self.write_policy(tenants or [])
        env = {
            "INFERFLUX_ROUTER_HOST": self.host,
            "INFERFLUX_ROUTER_PORT": str(self.port),
            "INFERFLUX_ROUTES_FILE": str(self.routes_file),
            "INFERFLUX_POLICY_FILE": str(self.policy_file.resolve()),
            # Requests sent while a model loads wait for it rather than getting 503.
            "INFERFLUX_HOLD_SECONDS": str(HOLD_SECONDS),
            **auth_env,
        }
        if self.secrets is not None:
            env["INFERFLUX_PROVIDER_KEYS_DIR"] = str(self.secrets.resolve())
        self.router = Child(
            "router", self.commands.router, env, self.url, self.run_dir / "logs" / "router.log"
        )
        return self.router.wait_ready(ROUTER_READY_SECONDS)

    def first_answer(self, served_name: str, timeout: float = HOLD_SECONDS + 30) -> float:
        """Seconds until a one-token completion of ``served_name`` comes back through the router.

        This is what "up" means to a user: the router has the model's replica in its table and the
        runtime answers. Only possible with auth off (no key exists yet when auth is on).
        """
        body = json.dumps({"model": served_name, "prompt": "Hi", "max_tokens": 1}).encode()
        request = urllib.request.Request(  # noqa: S310 - http://host:port of our own router
            f"{self.url}/v1/completions", body, {"Content-Type": "application/json"}
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - our router
                response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:300]
            raise StartError(
                f"{served_name} answered HTTP {error.code} through the router: {detail}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            raise StartError(f"{served_name} did not answer through the router: {error}") from None
        return time.monotonic() - started

    def apply(self, resources: Resources) -> list[str]:
        """Converge on ``resources``; return one line per model or tenant that could not be applied."""
        problems = self.write_policy(resources.tenants)
        servable = []
        for model in resources.models:
            try:
                plan.check_servable(model)
                servable.append(model)
            except plan.PlanError as error:
                problems.append(str(error))
        self.models = servable
        for name in set(self.deployments) - {m.metadata.name for m in servable}:
            self._retire(self.deployments.pop(name), f"{name} removed")
        self.write_routes()
        for model in servable:
            if plan.needs_runtime(model):
                try:
                    self._roll_out(model)
                except (SourceError, StartError) as error:
                    problems.append(f"InferenceModel {model.metadata.name}: {error}")
        self.write_routes()
        return problems

    def heal(self) -> None:
        """Restart replicas that exited, as a Deployment's ReplicaSet would."""
        for deployment in self.deployments.values():
            dead = [child for child in deployment.children if not child.alive()]
            for child in dead:
                self.say(f"{child.name} exited with status {child.popen.returncode}; restarting")
                deployment.children.remove(child)
            if dead:
                self.write_routes()
                try:
                    deployment.children += self._start_replicas(deployment.model, len(dead))
                except (SourceError, StartError) as error:
                    self.say(f"InferenceModel {deployment.model.metadata.name}: {error}")
                self.write_routes()

    def stop(self) -> None:
        """Stop every runtime, then the router."""
        for deployment in self.deployments.values():
            self._stop_children(deployment.children)
        self.deployments.clear()
        if self.router is not None:
            self.router.stop()
            self.router = None

    def write_routes(self) -> None:
        """Publish the routing table atomically (the router reloads the file when it changes)."""
        active = {name: d.revision for name, d in self.deployments.items()}
        replicas = [
            plan.Replica(model=name, revision=d.revision, url=child.url, name=child.name)
            for name, d in self.deployments.items()
            for child in d.children
            if child.alive()
        ]
        table = plan.routing_table(self.models, active, replicas)
        temp = self.routes_file.with_suffix(".tmp")
        temp.write_text(json.dumps(table.to_wire(), indent=2, sort_keys=True))
        os.replace(temp, self.routes_file)

    def write_policy(self, tenants: list[Tenant]) -> list[str]:
        """Publish the tenants' policy snapshot atomically; one line per tenant left out or cut down."""
        compiled = compile_policy(tenants)
        temp = self.policy_file.with_suffix(".tmp")
        temp.write_text(policy_json(compiled.snapshot))
        os.replace(temp, self.policy_file)
        return [f"Tenant {name}: {problem.message}" for name, problem in sorted(compiled.problems.items())]

    def _roll_out(self, model: InferenceModel) -> None:
        name = model.metadata.name
        revision = plan.revision(model)
        current = self.deployments.get(name)
        if current is not None and current.revision == revision:
            current.model = model
            self._scale(current, model.spec.replicas)
            return
        candidate = Deployment(model, revision, self._start_replicas(model, model.spec.replicas))
        self.deployments[name] = candidate
        self.write_routes()
        if current is not None:
            self._retire(current, f"{name} moved to revision {revision}")

    def _scale(self, deployment: Deployment, replicas: int) -> None:
        extra = deployment.children[replicas:]
        if extra:
            del deployment.children[replicas:]
            self.write_routes()
            self._stop_children(extra)
        missing = replicas - len(deployment.children)
        if missing > 0:
            deployment.children += self._start_replicas(deployment.model, missing)

    def _start_replicas(self, model: InferenceModel, count: int) -> list[Child]:
        """Start ``count`` replicas and wait until all are Ready; on failure none is left running."""
        if count == 0 or model.spec.source is None:
            return []
        path = materialise(model.spec.source, self.model_cache, secrets=self.secrets)
        revision = plan.revision(model)
        started: list[Child] = []
        try:
            for _ in range(count):
                port = free_port(self.host)
                replica = f"{model.metadata.name}-{revision}-{port}"
                env = plan.runtime_env(model, path, self.host, port)
                argv = [*self.commands.runtime, *plan.runtime_args(model)]
                log = self.run_dir / "logs" / f"{replica}.log"
                started.append(Child(replica, argv, env, f"http://{self.host}:{port}", log))
                self.say(f"starting {replica} on port {port}")
            for child in started:
                took = child.wait_ready(model.spec.rollout.progress_deadline_seconds)
                self.say(f"{child.name} ready in {took:.1f}s")
        except BaseException:
            self._stop_children(started)
            raise
        return started

    def _retire(self, deployment: Deployment, why: str) -> None:
        self.write_routes()
        self.say(f"{why}: stopping revision {deployment.revision}")
        self._stop_children(deployment.children)

    @staticmethod
    def _stop_children(children: list[Child]) -> None:
        for child in children:
            child.stop()
