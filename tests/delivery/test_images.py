"""The images' build files: linted, named from the chart, a runtime that installs only what it imports.

Building and running the images takes minutes and a daemonless builder (``make images``:
helm/build_images.py build + check); these tests cover what can be read without building them.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "helm"))
sys.path.insert(0, str(REPO / "tests"))
import build_images  # noqa: E402 - a script beside the chart, not a package
import llama_wheel  # noqa: E402
from test_dependencies import imported_modules, requirement_name  # noqa: E402

DOCKERFILES = ("operator/Dockerfile", "runtime_image/Dockerfile")
PACKAGE_DIRS = {"crds": "crds", "operator": "operator", "router": "router", "runtime": "runtime_image"}
PACKAGE_DIRS |= {"prompts": "prompts", "cli": "cli", "client": "sdk/python"}
# Named, not imported: uvicorn loads them by the strings __main__ passes (loop=, http=).
RUNTIME_BY_NAME = {"uvloop", "httptools"}


def runtime_requirements() -> dict[str, Requirement]:
    lines = (REPO / "runtime_image" / "requirements.txt").read_text().splitlines()
    parsed = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {requirement_name(r.name): r for r in parsed}


def pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_passes_hadolint(dockerfile: str) -> None:
    hadolint = REPO / ".venv" / "bin" / "hadolint"
    done = subprocess.run(
        [str(hadolint), "--no-color", str(REPO / dockerfile)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_final_stage_runs_as_a_numeric_non_root_user_without_build_tools(dockerfile: str) -> None:
    text = (REPO / dockerfile).read_text()
    final = text.split("\nFROM ")[-1]
    users = re.findall(r"^USER (\S+)$", final, flags=re.MULTILINE)
    assert users, f"{dockerfile}: the final stage sets no USER"
    assert users[-1].isdigit(), f"{dockerfile}: USER {users[-1]} is not numeric (runAsNonRoot needs a UID)"
    assert int(users[-1]) != 0
    for tool in ("build-essential", "cmake", "python3-dev", "git "):
        assert tool not in final, f"{dockerfile}: the final stage installs {tool.strip()}"


def test_image_users_are_the_uids_the_pods_run_as() -> None:
    """The chart's pods and the operator's runtime pods set runAsUser; the images' USER must match it."""
    from inferflux.operator.render.security import NONROOT_UID

    values = (REPO / "manifests" / "base" / "router-deployment.yaml").read_text()
    chart_uid = int(re.search(r"runAsUser: (\d+)", values).group(1))  # type: ignore[union-attr]
    operator_user = re.findall(r"^USER (\d+)$", (REPO / "operator" / "Dockerfile").read_text(), re.MULTILINE)
    runtime_user = re.findall(
        r"^USER (\d+)$", (REPO / "runtime_image" / "Dockerfile").read_text(), re.MULTILINE
    )
    assert int(operator_user[-1]) == chart_uid
    assert int(runtime_user[-1]) == NONROOT_UID


def runtime_imports() -> dict[str, set[str]]:
    """Third-party top-level module the runtime imports -> the distributions that provide it.

    A namespace package (``opentelemetry``) has several owners; any one of them may be the one needed.
    """
    owners = importlib.metadata.packages_distributions()
    modules = [
        name
        for name, files in imported_modules().items()
        if any(f.startswith("runtime_image/") for f in files)
    ]
    return {
        module: {requirement_name(owner) for owner in owners.get(module, [module])}
        for module in modules
        if module not in sys.stdlib_module_names and module not in ("inferflux", "__future__")
    }


def test_runtime_requirements_cover_every_runtime_import() -> None:
    installed = set(runtime_requirements())
    missing = sorted(module for module, dists in runtime_imports().items() if not dists & installed)
    assert not missing, (
        f"inferflux.runtime imports these, runtime_image/requirements.txt lacks them: {missing}"
    )


def test_runtime_requirements_are_only_runtime_imports() -> None:
    provided = set().union(*runtime_imports().values()) | RUNTIME_BY_NAME
    extra = sorted(set(runtime_requirements()) - provided)
    assert not extra, f"runtime_image/requirements.txt installs what the runtime never imports: {extra}"


def test_runtime_requirements_stay_within_pyproject_bounds() -> None:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    declared = [*project["dependencies"], *project["optional-dependencies"]["runtime"]]
    bounds = {requirement_name(Requirement(r).name): Requirement(r) for r in declared}
    for name, requirement in runtime_requirements().items():
        assert name in bounds, f"{name} is in the runtime image but not in pyproject.toml"
        pins = [s.version for s in requirement.specifier if s.operator == "=="]
        if pins:
            assert bounds[name].specifier.contains(pins[0]), f"{name}=={pins[0]} is outside {bounds[name]}"
        else:
            assert requirement.specifier == bounds[name].specifier, f"{name}: {requirement} != {bounds[name]}"


def test_runtime_dockerfile_installs_inferflux_without_its_dependencies() -> None:
    text = (REPO / "runtime_image" / "Dockerfile").read_text()
    assert "-r runtime_image/requirements.txt" in text
    assert re.search(r"pip install --no-deps \.", text), "the runtime image would pull every base dependency"


def test_the_image_build_compiles_llama_cpp_like_the_dockerfile() -> None:
    """The wheel make images builds beforehand must be the one the Dockerfile would build itself."""
    text = (REPO / "runtime_image" / "Dockerfile").read_text()
    match = re.search(r'CMAKE_ARGS="([^"]+)"', text)
    assert match is not None
    assert match.group(1) == llama_wheel.cmake_args("/src")
    assert "-DGGML_NATIVE=OFF" in match.group(1), "an image must not be tuned to the build machine's CPU"


def test_images_are_named_from_the_chart_values() -> None:
    chart = REPO / "helm" / "inferflux"
    values = yaml.safe_load((chart / "values.yaml").read_text())
    app_version = yaml.safe_load((chart / "Chart.yaml").read_text())["appVersion"]
    specs = {spec.key: spec for spec in build_images.chart_images()}
    assert specs["image"].reference == (
        f"{values['image']['registry']}/{values['image']['repository']}:{app_version}"
    )
    assert specs["runtimeImage"].dockerfile == "runtime_image/Dockerfile"
    # The plain manifests are rendered from the chart, so they name the same references.
    rendered = (REPO / "manifests" / "base" / "operator-deployment.yaml").read_text()
    assert f"image: {specs['image'].reference}" in rendered
    assert f"value: {specs['runtimeImage'].reference}" in rendered


def test_image_reference_prefers_the_values_tag() -> None:
    values = {"registry": "registry.example", "repository": "ml/runtime", "tag": "1.2.3"}
    assert build_images.image_reference(values, "0.1.0") == "registry.example/ml/runtime:1.2.3"
    assert build_images.image_reference({**values, "tag": ""}, "0.1.0") == "registry.example/ml/runtime:0.1.0"


def test_numeric_user_refuses_names() -> None:
    assert build_images.numeric_user({"User": "10001"}) == 10001
    assert build_images.numeric_user({"User": "65532:65532"}) == 65532
    assert build_images.numeric_user({"User": "inferflux"}) is None
    assert build_images.numeric_user({}) is None


def test_every_subpackage_is_in_the_distribution() -> None:
    """A folder with an __init__.py left out of pyproject's packages is missing from every image."""
    listed = set(pyproject()["tool"]["setuptools"]["packages"])  # type: ignore[index]
    found = {
        "inferflux." + ".".join((name, *init.parent.relative_to(REPO / folder).parts))
        for name, folder in PACKAGE_DIRS.items()
        for init in (REPO / folder).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert not found - listed, f"subpackages missing from pyproject.toml: {sorted(found - listed)}"


def test_the_build_context_lets_in_every_package_folder() -> None:
    """pip install . in the image reads pyproject's package-dir: a folder .dockerignore keeps out fails
    the build (sdk/python did, when the Python SDK landed and no image was built)."""
    allowed = {
        line[1:].strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    mapped = set(pyproject()["tool"]["setuptools"]["package-dir"].values())  # type: ignore[index]
    assert mapped <= allowed, f"kept out of the image build context: {sorted(mapped - allowed)}"
