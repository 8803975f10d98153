"""pyproject.toml says what the code uses: every import is declared, every declared package is used.

An undeclared import works only while some other package happens to pull it in; a declared package
that nothing imports is weight in every image. Both drift silently, so this test reads the source.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ("crds", "operator", "router", "runtime_image", "prompts", "cli", "sdk/python")
# Extras whose packages the code may import (guarded where optional); dev tools and the GPU extra
# are not imported by the package.
CODE_EXTRAS = ("runtime", "model", "mcp")
# Declared packages the code names rather than imports: uvicorn loads them by these strings, and
# Starlette's form parser imports python-multipart when a handler reads a form.
USED_BY_NAME = {
    "uvloop": '"uvloop"',
    "httptools": '"httptools"',
    "websockets": '"websockets-sansio"',
    "python-multipart": ".form(",
}


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement string."""
    name = re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> tuple[set[str], set[str]]:
    """(base dependencies, base plus the extras the code may import)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {requirement_name(r) for r in project["dependencies"]}
    extras = {requirement_name(r) for extra in CODE_EXTRAS for r in project["optional-dependencies"][extra]}
    return base, base | extras


def source_files() -> list[Path]:
    return [path for folder in PACKAGE_DIRS for path in (ROOT / folder).rglob("*.py")]


def imported_modules() -> dict[str, set[str]]:
    """Top-level module name to the files importing it, for every absolute import in the package."""
    found: dict[str, set[str]] = {}
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def third_party(modules: dict[str, set[str]]) -> dict[str, set[str]]:
    """Distribution name to the modules of it that the code imports."""
    owners = importlib.metadata.packages_distributions()
    distributions: dict[str, set[str]] = {}
    for module in modules:
        if module in sys.stdlib_module_names or module in ("inferflux", "__future__"):
            continue
        for owner in owners.get(module, [module]):
            distributions.setdefault(requirement_name(owner), set()).add(module)
    return distributions


def test_every_imported_package_is_declared() -> None:
    _, allowed = declared()
    modules = imported_modules()
    owners = importlib.metadata.packages_distributions()
    # A namespace package (``opentelemetry``) has many owners: declaring one of them is enough.
    namespaces = {
        module
        for module in modules
        if len(owners.get(module, [])) > 1
        and any(requirement_name(owner) in allowed for owner in owners[module])
    }
    missing = {
        dist: sorted(f for m in mods for f in modules[m])
        for dist, mods in third_party(modules).items()
        if dist not in allowed and not mods <= namespaces
    }
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_every_declared_dependency_is_used() -> None:
    base, _ = declared()
    used = set(third_party(imported_modules()))
    text = "\n".join(path.read_text() for path in source_files())
    by_name = {dist for dist, literal in USED_BY_NAME.items() if literal in text}
    unused = sorted(base - used - by_name)
    assert not unused, f"declared in pyproject.toml but never imported: {unused}"
