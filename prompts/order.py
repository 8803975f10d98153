"""The order in which a prompt's slices are joined.

``slices`` is a JSON object, and JSON objects have no order that survives the API server (it stores
maps with sorted keys) or RFC 8785 (which sorts keys too). So the order is explicit: the metadata
entry ``inferflux.io/slice-order`` lists slice names, comma-separated; slices it does not name follow
in name order. Without it, slices are joined in name order.
"""

from __future__ import annotations

from inferflux.crds.prompt import PromptSpec

SLICE_ORDER_KEY = "inferflux.io/slice-order"


def declared_order(spec: PromptSpec) -> list[str]:
    """The names listed in the slice-order metadata, as written."""
    raw = spec.metadata.get(SLICE_ORDER_KEY, "")
    return [name.strip() for name in raw.split(",") if name.strip()]


def slice_order(spec: PromptSpec) -> list[str]:
    """Every slice name of ``spec``, in rendering order."""
    declared = [name for name in declared_order(spec) if name in spec.slices]
    rest = sorted(set(spec.slices) - set(declared))
    return list(dict.fromkeys(declared)) + rest


def order_problems(spec: PromptSpec) -> list[str]:
    """What is wrong with the slice-order metadata: unknown or repeated names."""
    declared = declared_order(spec)
    problems = [f"{SLICE_ORDER_KEY}: unknown slice {name!r}" for name in declared if name not in spec.slices]
    repeated = sorted({name for name in declared if declared.count(name) > 1})
    problems += [f"{SLICE_ORDER_KEY}: slice {name!r} listed twice" for name in repeated]
    return problems
