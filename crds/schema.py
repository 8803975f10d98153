"""Turn a pydantic model's JSON Schema into a structural OpenAPI v3 schema for a CRD.

The API server accepts only *structural* schemas: every node has a ``type``, there are no ``$ref``s,
and optional fields are simply absent rather than ``null``. Pydantic emits JSON Schema 2020-12 with
``$defs``, ``anyOf [X, null]`` for optionals and titles everywhere; this module rewrites that, and
nothing else, so that the pydantic models stay the single source of truth.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

_DROPPED_KEYS = {"title", "discriminator"}
_EXCLUSIVE_BOUNDS = {"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI v3 schema of ``model`` as used in a CRD, with camelCase property names."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _rewrite(raw, defs)
    return schema


def _rewrite(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_rewrite(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _rewrite(merged, defs)
    if node.get("x-kubernetes-int-or-string"):
        # int-or-string must not carry a type; its anyOf only constrains the two shapes.
        return {k: _rewrite(v, defs) for k, v in node.items() if k not in _DROPPED_KEYS | {"type"}}
    node = _drop_null_branch(node)
    if "$ref" in node:
        return _rewrite(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _rewrite(sub, defs) for name, sub in value.items()}
        elif key == "default" and value is None:
            continue
        elif key in _EXCLUSIVE_BOUNDS and not isinstance(value, bool):
            # JSON Schema 2020 writes `exclusiveMinimum: 0`; OpenAPI v3.0 (the CRD dialect) writes
            # `minimum: 0, exclusiveMinimum: true`.
            out[_EXCLUSIVE_BOUNDS[key]] = value
            out[key] = True
        else:
            out[key] = _rewrite(value, defs)
    if "properties" in out:
        out.setdefault("type", "object")
    if out.get("type") == "object" and "additionalProperties" in out and out["additionalProperties"] is False:
        del out["additionalProperties"]
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def _drop_null_branch(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, {type: null}]`` (pydantic's Optional) becomes X: absent means unset."""
    branches = node.get("anyOf")
    if not branches:
        return node
    non_null = [b for b in branches if b.get("type") != "null"]
    if len(non_null) == len(branches) or len(non_null) != 1:
        return node
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    return {**non_null[0], **rest}
