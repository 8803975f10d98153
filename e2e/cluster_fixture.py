"""A real, local Kubernetes control plane for the e2e tests, with no Docker and no kubelet.

The e2e tests need what a cluster *does*, not only what it stores: RBAC that says no, service
account tokens, admission (Pod Security), Deployments that roll out through ReplicaSets, pods
that get scheduled, turn Ready and get IPs, EndpointSlices for Services, and the garbage collector
following owner references. So this module runs the upstream binaries built by
``make cluster-bin`` (pinned in ``e2e/cluster/go.mod``) as plain processes on loopback ports:

- ``etcd``;
- ``kube-apiserver`` with RBAC + Node authorization, x509 client certificates and signed service
  account tokens (a fresh CA and keys per run, made with ``cryptography``);
- ``kube-controller-manager`` with all default controllers, each under its own service account;
- ``kube-scheduler``;
- ``kwok``, which plays the kubelet of one fake node, ``kwok-node-0``: it drives pod status
  through the stages in ``e2e/stages/`` (Ready at once, or held un-Ready / failed on request).

Everything lives in one temporary folder and in process groups of their own. ``stop()`` ends
them and removes the folder; it is also registered with ``atexit``, and every child asks the
kernel to kill it when its parent dies (``PR_SET_PDEATHSIG``), so not even a killed pytest leaves
a process behind.

The pytest fixtures using this are in ``e2e/conftest.py``; docs/testing.md is the user guide.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import datetime
import functools
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[1]
#: Where ``make cluster-bin`` puts the binaries; ``INFERFLUX_E2E_BIN_DIR`` points elsewhere.
DEFAULT_BIN_DIR = Path(os.environ.get("INFERFLUX_E2E_BIN_DIR") or REPO / ".cache" / "cluster-bin")
STAGES_DIR = Path(__file__).resolve().parent / "stages"
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kubectl",
    "helm",
)
NODE_NAME = "kwok-node-0"
#: KWOK's fake pod IPs. They are only stored in the API: nothing listens there, never dial them.
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
#: The fake node's address: loopback, so that an API server reaching for a "kubelet"
#: (``kubectl logs``/``exec``) is refused at once instead of sending traffic anywhere.
NODE_IP = "127.0.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
KEEP_ENV = "INFERFLUX_E2E_KEEP"


class ClusterError(RuntimeError):
    """The control plane could not be started (the message carries the failing component's log)."""


class ClusterBinariesMissing(ClusterError):
    """``make cluster-bin`` has not been run (or not since a binary was added)."""


class CommandFailed(subprocess.CalledProcessError):
    """A kubectl or helm command exited non-zero; unlike its base class, it shows stderr."""

    def __str__(self) -> str:
        return f"{' '.join(map(str, self.cmd))} exited {self.returncode}:\n{self.stderr or self.stdout}"


def find_binaries(bin_dir: Path = DEFAULT_BIN_DIR) -> dict[str, Path]:
    """The path of each binary the control plane needs, or one error naming the fix."""
    paths = {name: bin_dir / name for name in BINARIES}
    missing = sorted(name for name, path in paths.items() if not os.access(path, os.X_OK))
    if missing:
        raise ClusterBinariesMissing(
            f"missing control-plane binaries in {bin_dir}: {', '.join(missing)}. "
            "Run `make cluster-bin` (10-20 minutes cold on 2 cores, seconds when warm)."
        )
    return paths


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------------------------
# PKI: one throw-away CA per run, ECDSA P-256 keys (cheap to make, accepted by every component).


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class CertificateAuthority:
    """A self-signed CA that signs the serving and client certificates of one run."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, common_name: str = "inferflux-e2e-ca") -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def issue(
        self,
        common_name: str,
        *,
        organizations: Sequence[str] = (),
        dns_names: Sequence[str] = (),
        ips: Sequence[str] = (),
        server: bool = False,
    ) -> tuple[bytes, bytes]:
        """A (certificate PEM, key PEM) pair: a client certificate, or a serving one if ``server``.

        Kubernetes maps a client certificate's CN to the user name and its O entries to groups.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if dns_names or ips:
            sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
            sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return _pem_cert(builder.sign(self.key, hashes.SHA256())), _pem_key(key)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_pem: bytes,
    user: str,
    credentials: Mapping[str, str],
    namespace: str | None = None,
) -> Path:
    """Write a one-context kubeconfig (mode 0600); ``credentials`` is its ``user`` stanza."""
    context: dict[str, str] = {"cluster": "inferflux-e2e", "user": user}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "inferflux-e2e",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [{"name": user, "user": dict(credentials)}],
        "contexts": [{"name": user, "context": context}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


# --------------------------------------------------------------------------------------------
# Access: a kubeconfig plus the tools that use it.


@dataclass
class KubeAccess:
    """One identity on the cluster: its kubeconfig, ``kubectl``/``helm`` and a Python client.

    kubectl's discovery cache and Helm's config, cache and data folders go to ``home`` (inside
    the cluster's temporary folder), so tests never read or write the user's ~/.kube or ~/.config.
    """

    kubeconfig: Path
    bin_dir: Path
    home: Path
    _api_client: Any = field(default=None, init=False, repr=False)

    def env(self) -> dict[str, str]:
        """The environment for a tool run as this identity (KUBECONFIG and private caches)."""
        env = dict(os.environ)
        env.update(
            KUBECONFIG=str(self.kubeconfig),
            KUBECACHEDIR=str(self.home / "kube-cache"),
            HELM_CACHE_HOME=str(self.home / "helm" / "cache"),
            HELM_CONFIG_HOME=str(self.home / "helm" / "config"),
            HELM_DATA_HOME=str(self.home / "helm" / "data"),
        )
        return env

    def run(
        self,
        tool: str,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``tool`` (a binary of .cache/cluster-bin) with text output captured."""
        cmd = [str(self.bin_dir / tool), *args]
        done = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            check=False,
        )
        if check and done.returncode != 0:
            raise CommandFailed(done.returncode, cmd, done.stdout, done.stderr)
        return done

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl ARGS`` as this identity; raises :class:`CommandFailed` unless ``check=False``."""
        return self.run("kubectl", *args, input=input, check=check, timeout=timeout)

    def helm(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """``helm ARGS`` as this identity; raises :class:`CommandFailed` unless ``check=False``."""
        return self.run("helm", *args, input=input, check=check, timeout=timeout)

    def kubectl_json(self, *args: str) -> Any:
        """``kubectl ARGS -o json``, parsed."""
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    @property
    def api_client(self) -> Any:
        """An official ``kubernetes`` client ``ApiClient`` for this identity (made on first use)."""
        if self._api_client is None:
            from kubernetes import config  # imported late: it is slow, and only some tests use it

            new_client: Callable[..., Any] = config.new_client_from_config  # untyped library
            self._api_client = new_client(config_file=str(self.kubeconfig))
        return self._api_client

    def close(self) -> None:
        """Close the Python client's connection pool, if one was made."""
        if self._api_client is not None:
            self._api_client.close()
            self._api_client = None


# --------------------------------------------------------------------------------------------
# Processes.


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child get SIGKILL when its parent dies (Linux only).

    The callable is built before ``fork``: the child then only makes one system call.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)

    return preexec


@dataclass
class Component:
    """One control-plane process, its own process group, and its log file."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self, env: Mapping[str, str]) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,  # its own process group: one signal reaches its children too
            preexec_fn=_die_with_parent(),  # one prctl call in the child, no Python state
        )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _wait(what: str, probe: Callable[[], bool], deadline: float, alive: Callable[[], None]) -> None:
    """Poll ``probe`` every 0.1 s until true; ``alive`` raises if a process died meanwhile."""
    while True:
        alive()
        if probe():
            return
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _https_ok(url: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


class LocalCluster:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + KWOK on loopback.

    Use it as a context manager, or call :meth:`start` and :meth:`stop` (idempotent). ``admin``
    is a ``system:masters`` identity; :meth:`service_account_access` makes least-privileged ones.
    """

    def __init__(self, bin_dir: Path = DEFAULT_BIN_DIR, *, keep: bool | None = None) -> None:
        self.binaries = find_binaries(bin_dir)
        self.bin_dir = bin_dir
        self.keep = os.environ.get(KEEP_ENV, "") not in ("", "0") if keep is None else keep
        self.workdir = Path(tempfile.mkdtemp(prefix="inferflux-e2e-"))
        self.components: list[Component] = []
        self.ca = CertificateAuthority.create()
        self.ca_file = self.workdir / "pki" / "ca.crt"
        self.apiserver_port = free_port()
        self.server = f"https://127.0.0.1:{self.apiserver_port}"
        self._kubeconfig_dir = self.workdir / "kubeconfig"
        self._admin: KubeAccess | None = None
        self._env: dict[str, str] = {}
        self._started = False
        self._stopped = False
        self.startup_seconds = 0.0
        atexit.register(self.stop)

    # -- public API --------------------------------------------------------------------------

    @property
    def admin(self) -> KubeAccess:
        """The cluster-admin identity (client certificate in group ``system:masters``)."""
        if self._admin is None:
            raise ClusterError("the cluster is not started")
        return self._admin

    @property
    def kube_version(self) -> str:
        """The pinned Kubernetes release the binaries were built from (e.g. ``v1.36.3``)."""
        return (self.bin_dir / "KUBE_VERSION").read_text().strip()

    def start(self, timeout: float = 90) -> LocalCluster:
        """Start every component and wait until the cluster can run a pod; stop all on failure."""
        if self._started:
            return self
        self._started = True
        began = time.monotonic()
        try:
            self._start(time.monotonic() + timeout)
        except Exception as error:
            self.stop(remove=False)
            logs = "\n\n".join(f"--- {c.name} (last lines) ---\n{c.log_tail()}" for c in self.components)
            self.stop()
            raise ClusterError(f"local control plane failed to start: {error}\n\n{logs}") from error
        except BaseException:  # KeyboardInterrupt and the like: clean up, report nothing more
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self, *, remove: bool = True, grace: float = 5.0) -> None:
        """SIGTERM every process group, SIGKILL what is left after ``grace`` s, remove the folder."""
        if not self._stopped:
            self._stopped = True
            atexit.unregister(self.stop)
            if self._admin is not None:
                self._admin.close()
            # Clients first, etcd last: an API server whose etcd is gone stalls its shutdown.
            deadline = time.monotonic() + grace
            etcd = [c for c in self.components if c.name == "etcd"]
            for wave in ([c for c in self.components if c.name != "etcd"], etcd):
                for component in wave:
                    component.signal(signal.SIGTERM)
                for component in wave:
                    if component.process is None:
                        continue
                    try:
                        component.process.wait(max(0.1, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        component.signal(signal.SIGKILL)
                        component.process.wait()
                    component.close_log()
        if remove and self.workdir.exists():
            if self.keep:
                print(f"\n[{KEEP_ENV}] control-plane folder kept: {self.workdir}", file=sys.stderr)
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def service_account_access(
        self, namespace: str, name: str, *, duration_seconds: int = 3600
    ) -> KubeAccess:
        """Create (if needed) ServiceAccount ``namespace/name`` and a kubeconfig with its token.

        The token comes from the TokenRequest API, exactly what a pod's projected token is, so the
        API server authenticates it as ``system:serviceaccount:NS:NAME`` and RBAC applies as is.
        """
        admin = self.admin
        for manifest in (
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace},
            },
        ):
            admin.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(manifest))
        token = admin.kubectl(
            "create", "token", name, "-n", namespace, f"--duration={duration_seconds}s"
        ).stdout.strip()
        user = f"system:serviceaccount:{namespace}:{name}"
        path = write_kubeconfig(
            self._kubeconfig_dir / f"sa-{namespace}-{name}.kubeconfig",
            server=self.server,
            ca_pem=_pem_cert(self.ca.cert),
            user=user,
            credentials={"token": token},
            namespace=namespace,
        )
        return KubeAccess(path, self.bin_dir, self._dir("home"))

    # -- start-up ----------------------------------------------------------------------------

    def _dir(self, *parts: str) -> Path:
        path = self.workdir.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _path(self, *parts: str, data: bytes | None = None) -> Path:
        path = self.workdir.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data)
            path.chmod(0o600)
        return path

    def _client_kubeconfig(self, user: str, organizations: Sequence[str] = ()) -> Path:
        cert, key = self.ca.issue(user, organizations=organizations)
        return write_kubeconfig(
            self._path("kubeconfig", f"{user.replace(':', '-')}.kubeconfig"),
            server=self.server,
            ca_pem=_pem_cert(self.ca.cert),
            user=user,
            credentials={"client-certificate-data": _b64(cert), "client-key-data": _b64(key)},
        )

    def _add(self, name: str, *argv: str) -> Component:
        component = Component(name, [str(self.binaries[name]), *argv], self._path("logs", f"{name}.log"))
        self.components.append(component)
        component.start(self._env)
        return component

    def _check_alive(self) -> None:
        for component in self.components:
            if not component.running():
                code = component.process.returncode if component.process else None
                raise ClusterError(f"{component.name} exited with status {code}")

    def _start(self, deadline: float) -> None:
        self._env = dict(os.environ)
        # A private HOME: KWOK reads ~/.kwok, kubectl writes ~/.kube; loopback never via a proxy.
        self._env.update(HOME=str(self._dir("home")), NO_PROXY="127.0.0.1,localhost")
        self._env.pop("KUBECONFIG", None)

        ca_pem = _pem_cert(self.ca.cert)
        self._path("pki", "ca.crt", data=ca_pem)
        ca_key = self._path("pki", "ca.key", data=_pem_key(self.ca.key))
        serving_cert, serving_key = self.ca.issue(
            "kube-apiserver",
            server=True,
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ips=("127.0.0.1", str(ipaddress.ip_network(SERVICE_CIDR)[1])),
        )
        tls_cert = self._path("pki", "apiserver.crt", data=serving_cert)
        tls_key = self._path("pki", "apiserver.key", data=serving_key)
        sa_key = ec.generate_private_key(ec.SECP256R1())
        sa_private = self._path("pki", "sa.key", data=_pem_key(sa_key))
        sa_public = self._path(
            "pki",
            "sa.pub",
            data=sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
        admin_kubeconfig = self._client_kubeconfig("inferflux-e2e-admin", ["system:masters"])
        kcm_kubeconfig = self._client_kubeconfig("system:kube-controller-manager")
        scheduler_kubeconfig = self._client_kubeconfig("system:kube-scheduler")
        # KWOK plays the kubelet of every fake node; the Node authorizer would confine a
        # system:node:NAME identity to one node, so it runs as an admin.
        kwok_kubeconfig = self._client_kubeconfig("kwok", ["system:masters"])
        self._admin = KubeAccess(admin_kubeconfig, self.bin_dir, self._dir("home"))

        etcd_port, etcd_peer_port = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._add(
            "etcd",
            "--name=e2e",
            f"--data-dir={self._dir('etcd')}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}",
            f"--initial-cluster=e2e=http://127.0.0.1:{etcd_peer_port}",
            "--unsafe-no-fsync",  # a throw-away store: durability only costs time
            "--log-level=warn",
        )
        _wait("etcd", lambda: _http_ok(f"{etcd_url}/health"), deadline, self._check_alive)

        self._add(
            "kube-apiserver",
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}",
            "--advertise-address=127.0.0.1",
            # No Endpoints for the `kubernetes` Service: loopback is not a valid endpoint address.
            "--endpoint-reconciler-type=none",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--tls-cert-file={tls_cert}",
            f"--tls-private-key-file={tls_key}",
            f"--client-ca-file={self.ca_file}",
            "--authorization-mode=Node,RBAC",
            # As on a real cluster: Pod Security admission, not this flag, keeps privileged out.
            "--allow-privileged=true",
            "--enable-admission-plugins=NodeRestriction",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={sa_public}",
            f"--service-account-signing-key-file={sa_private}",
            "--profiling=false",
            "--v=1",
        )
        admin_tls = ssl.create_default_context(cafile=str(self.ca_file))
        admin_cert, admin_key = self.ca.issue("inferflux-e2e-probe", organizations=["system:masters"])
        admin_tls.load_cert_chain(
            self._path("pki", "probe.crt", data=admin_cert), self._path("pki", "probe.key", data=admin_key)
        )
        _wait(
            "kube-apiserver /readyz",
            lambda: _https_ok(f"{self.server}/readyz", admin_tls),
            deadline,
            self._check_alive,
        )

        kcm_port, scheduler_port = free_port(), free_port()
        self._add(
            "kube-controller-manager",
            f"--kubeconfig={kcm_kubeconfig}",
            f"--authentication-kubeconfig={kcm_kubeconfig}",
            f"--authorization-kubeconfig={kcm_kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={kcm_port}",
            "--leader-elect=false",  # one instance: leader election would only add seconds
            "--controllers=*",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={sa_private}",
            f"--root-ca-file={self.ca_file}",
            f"--cluster-signing-cert-file={self.ca_file}",
            f"--cluster-signing-key-file={ca_key}",
            "--terminated-pod-gc-threshold=100",
            "--v=1",
        )
        self._add(
            "kube-scheduler",
            f"--kubeconfig={scheduler_kubeconfig}",
            f"--authentication-kubeconfig={scheduler_kubeconfig}",
            f"--authorization-kubeconfig={scheduler_kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={scheduler_port}",
            "--leader-elect=false",
            "--v=1",
        )
        self._add(
            "kwok",
            f"--kubeconfig={kwok_kubeconfig}",
            f"--config={STAGES_DIR / 'node.yaml'}",
            f"--config={STAGES_DIR / 'pod.yaml'}",
            "--manage-all-nodes=true",
            "--node-lease-duration-seconds=40",
            f"--cidr={POD_CIDR}",
            f"--node-ip={NODE_IP}",
        )
        self.admin.kubectl("apply", "-f", "-", input=json.dumps(_node_manifest(NODE_NAME)))

        insecure = ssl.create_default_context()  # their serving certs are self-signed in memory
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        for name, port in (("kube-controller-manager", kcm_port), ("kube-scheduler", scheduler_port)):
            probe = functools.partial(_https_ok, f"https://127.0.0.1:{port}/healthz", insecure)
            _wait(f"{name} /healthz", probe, deadline, self._check_alive)
        _wait(f"node {NODE_NAME} Ready", self._node_ready, deadline, self._check_alive)
        # The service-account controller is up once `default` has its ServiceAccount; before
        # that, admission rejects pods.
        _wait("ServiceAccount default/default", self._default_sa_exists, deadline, self._check_alive)

    def _node_ready(self) -> bool:
        done = self.admin.kubectl(
            "get",
            "node",
            NODE_NAME,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            check=False,
        )
        return done.stdout.strip() == "True"

    def _default_sa_exists(self) -> bool:
        done = self.admin.kubectl("get", "serviceaccount", "default", "-n", "default", check=False)
        return done.returncode == 0


def _node_manifest(name: str) -> dict[str, Any]:
    """The fake node KWOK manages; it is Ready once KWOK's node-initialize stage runs."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
    }


@contextlib.contextmanager
def local_cluster(bin_dir: Path = DEFAULT_BIN_DIR) -> Iterator[LocalCluster]:
    """``with local_cluster() as cluster:`` a started cluster, stopped and removed on exit."""
    cluster = LocalCluster(bin_dir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


# --------------------------------------------------------------------------------------------
# Sample objects shared by the e2e modules.

SAMPLE_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def inference_model(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    """An InferenceModel body with ``spec``, as a user would apply it."""
    return {
        "apiVersion": "inferflux.io/v1alpha1",
        "kind": "InferenceModel",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def llamacpp_model(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    """A small llama.cpp InferenceModel; ``spec`` keys override."""
    defaults = {
        "engine": "llamacpp",
        "source": {"uri": "file://models/gemma3-270m.gguf", "sha256": SAMPLE_SHA256},
        "replicas": 1,
        "engineArgs": {"contextSize": 2048},
    }
    return inference_model(name, namespace, {**defaults, **spec})


def provider_model(name: str, namespace: str, secret: str, key: str) -> dict[str, Any]:
    """An OpenAI InferenceModel whose API key is read from Secret ``secret``, key ``key``."""
    provider = {"name": "openai", "model": "gpt-4o-mini", "apiKeySecretRef": {"name": secret, "key": key}}
    return inference_model(name, namespace, {"engine": "provider", "provider": provider})


def e2e_suite(filename: str) -> Any:
    """An e2e test module beside this file (``test_operator.py``), loaded once by path, for the suites
    that share its fixtures or helpers (pytest's importlib mode puts no test folder on sys.path)."""
    import importlib.util

    name = "inferflux_e2e_" + filename.removesuffix(".py")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(filename))
        assert spec is not None
        assert spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def operator_suite() -> Any:
    """e2e/test_operator.py as a module (:func:`e2e_suite`)."""
    return e2e_suite("test_operator.py")
