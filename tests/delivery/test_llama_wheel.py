"""helm/llama_wheel.py: one llama.cpp build recipe for `make install` and the runtime image."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "helm"))

import llama_wheel  # noqa: E402 - a script beside the chart, not a package


def copy_recipe(into: Path) -> Path:
    (into / "runtime_image").mkdir(parents=True)
    for name in ("requirements.txt", "llama_without_common.cmake"):
        shutil.copy(REPO / "runtime_image" / name, into / "runtime_image" / name)
    return into


def test_the_recipe_does_not_depend_on_where_the_checkout_is(tmp_path: Path) -> None:
    assert llama_wheel.recipe_id(copy_recipe(tmp_path / "elsewhere")) == llama_wheel.recipe_id(REPO)


def test_a_changed_include_or_pin_is_a_new_recipe(tmp_path: Path) -> None:
    include = copy_recipe(tmp_path / "a") / llama_wheel.WITHOUT_COMMON
    include.write_text(include.read_text() + "set(GGML_OPENMP OFF)\n")
    assert llama_wheel.recipe_id(tmp_path / "a") != llama_wheel.recipe_id(REPO)

    requirements = copy_recipe(tmp_path / "b") / "runtime_image" / "requirements.txt"
    pinned = llama_wheel.pinned_requirement(requirements)
    requirements.write_text(requirements.read_text().replace(pinned, "llama-cpp-python==0.0.1"))
    assert llama_wheel.pinned_requirement(requirements) == "llama-cpp-python==0.0.1"
    assert llama_wheel.recipe_id(tmp_path / "b") != llama_wheel.recipe_id(REPO)


def test_the_build_is_portable_and_includes_the_file_that_drops_common() -> None:
    args = llama_wheel.cmake_args("/src").split()
    assert "-DGGML_NATIVE=OFF" in args, "a wheel tuned to this CPU must not reach an image"
    include = next(a for a in args if a.startswith("-DCMAKE_PROJECT_llama.cpp_INCLUDE="))
    assert include.endswith("=/src/runtime_image/llama_without_common.cmake")
    assert (REPO / llama_wheel.WITHOUT_COMMON).read_text().count("set(LLAMA_BUILD_COMMON OFF)") == 1


def test_the_wheel_folder_follows_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert llama_wheel.wheel_dir() == tmp_path / "inferflux" / "wheels" / llama_wheel.recipe_id()
    assert llama_wheel.built_wheel(llama_wheel.wheel_dir()) is None
