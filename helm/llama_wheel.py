"""The llama-cpp-python wheel InferFlux runs, compiled once per recipe and kept outside the checkout.

llama-cpp-python has no CPU wheel on PyPI, so every install compiles llama.cpp: minutes on two cores.
``make install`` (the tests, ``make run``) and ``make images`` (the runtime image) need the same
build, so it is made once per *recipe* (the pinned version, the CMake flags, the project include)
into ``$XDG_CACHE_HOME/inferflux/wheels/<recipe hash>/``, and both install from there
(``--find-links``). pip's wheel cache cannot do it: it ignores ``CMAKE_ARGS``; uv's fetches the sdist
again, and compiles again, whenever the index's cache headers say so.

The recipe is the runtime image's: portable (``GGML_NATIVE=OFF``: AVX2/FMA, any x86-64-v3 CPU), so
that the tests run the llama.cpp the image ships, and the CPU backend alone (no multimodal library,
examples, tools, tests, server or ``common`` library; runtime_image/llama_without_common.cmake).

    python helm/llama_wheel.py build   # compile if missing, then print the folder
    python helm/llama_wheel.py dir     # print the folder

Standard library only: it runs before anything else is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "runtime_image" / "requirements.txt"
WITHOUT_COMMON = "runtime_image/llama_without_common.cmake"


def pinned_requirement(requirements: Path = REQUIREMENTS) -> str:
    """The ``llama-cpp-python==X`` line of the runtime image's requirements: the one version built."""
    for line in requirements.read_text().splitlines():
        if line.startswith("llama-cpp-python=="):
            return line.split(";")[0].strip()
    raise SystemExit("llama_wheel: runtime_image/requirements.txt must pin llama-cpp-python==<version>")


def cmake_args(root: str) -> str:
    """The build's CMAKE_ARGS for a checkout at ``root`` (``/src`` in runtime_image/Dockerfile)."""
    return (
        "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF "
        "-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF "
        f"-DCMAKE_PROJECT_llama.cpp_INCLUDE={root}/{WITHOUT_COMMON}"
    )


def recipe_id(repo: Path = REPO) -> str:
    """A hash of what decides the wheel's contents; where the checkout lies does not count."""
    recipe = "\n".join(
        [
            pinned_requirement(repo / "runtime_image" / "requirements.txt"),
            cmake_args(""),
            (repo / WITHOUT_COMMON).read_text(),
        ]
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def wheel_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "inferflux" / "wheels" / recipe_id()


def built_wheel(folder: Path) -> Path | None:
    version = pinned_requirement().split("==")[1]
    return next(iter(sorted(folder.glob(f"llama_cpp_python-{version}-*.whl"))), None)


def build() -> Path:
    """The folder holding the recipe's wheel, compiled first if it is not there yet."""
    folder = wheel_dir()
    if built_wheel(folder) is not None:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    partial = Path(f"{folder}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    started = time.monotonic()
    env = {**os.environ, "CMAKE_ARGS": cmake_args(str(REPO))}
    # --no-cache-dir: pip's wheel cache may hold a wheel built with other flags.
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-cache-dir", "--no-deps", "--wheel-dir"]
    requirement = pinned_requirement()
    print(f"llama_wheel: compiling {requirement} (CPU backend, portable; minutes)", file=sys.stderr)
    nice = shutil.which("nice") or "nice"
    argv = [nice, "-n", "10", *pip, str(partial), requirement]
    # Run from the wheel folder: `python -m` puts the working directory first on sys.path, and the
    # checkout's operator/ would shadow the standard library's operator module.
    done = subprocess.run(argv, env=env, cwd=folder, check=False)  # noqa: S603 - our own argv
    if done.returncode != 0:
        raise SystemExit(f"llama_wheel: building {requirement} failed (exit {done.returncode})")
    for wheel in partial.glob("*.whl"):
        wheel.rename(folder / wheel.name)  # the same filesystem: a reader never sees half a wheel
    shutil.rmtree(partial, ignore_errors=True)
    print(f"llama_wheel: built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return folder


def main(argv: list[str]) -> int:
    if argv[1:] == ["build"]:
        print(build())
        return 0
    if argv[1:] == ["dir"]:
        print(wheel_dir())
        return 0
    print("usage: llama_wheel.py build|dir", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
