"""Text rendering of InferenceModels as ``kubectl get`` and ``kubectl describe`` show them (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any


def age(timestamp: str, now: dt.datetime) -> str:
    """A short age like kubectl's: ``45s``, ``12m``, ``5h``, ``3d``."""
    try:
        then = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    seconds = max(int((now - then).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit == "m" and seconds >= size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def columns(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by three spaces, as kubectl prints them."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _cell(value: Any, kind: str, now: dt.datetime) -> str:
    if value is None or value == "":
        return "<none>" if kind != "date" else ""
    if kind == "date" and isinstance(value, str):
        return age(value, now)
    return str(value)


def render_table(
    table: dict[str, Any], now: dt.datetime, wide: bool = False, namespaces: bool = False
) -> str:
    """A meta.k8s.io Table as kubectl renders it; ``wide`` adds priority-1 columns."""
    definitions = table.get("columnDefinitions") or []
    shown = [i for i, d in enumerate(definitions) if wide or not d.get("priority")]
    header = [definitions[i]["name"].upper() for i in shown]
    rows = []
    for row in table.get("rows") or []:
        cells = [_cell(row["cells"][i], definitions[i].get("type", ""), now) for i in shown]
        if namespaces:
            cells.insert(0, ((row.get("object") or {}).get("metadata") or {}).get("namespace", ""))
        rows.append(cells)
    if not rows:
        return ""
    return columns([["NAMESPACE", *header] if namespaces else header, *rows])


def describe(model: dict[str, Any], now: dt.datetime) -> str:
    """A ``kubectl describe``-like view: what is asked, what is observed, and every condition."""
    meta, spec, status = model.get("metadata") or {}, model.get("spec") or {}, model.get("status") or {}
    source = spec.get("source") or {}
    provider = spec.get("provider") or {}
    fields = [
        ("Name", meta.get("name")),
        ("Namespace", meta.get("namespace")),
        ("Generation", f"{meta.get('generation')} (observed {status.get('observedGeneration', '<none>')})"),
        ("Engine", spec.get("engine")),
        ("Served name", spec.get("servedName") or meta.get("name")),
        ("Source", f"{source['uri']} (sha256 {source['sha256'][:12]}…)" if source else None),
        ("Provider", f"{provider.get('name')} {provider.get('model')}" if provider else None),
        ("Replicas", f"{status.get('readyReplicas', 0)} ready / {spec.get('replicas', 1)} desired"),
        ("Active revision", status.get("activeRevision")),
        ("Candidate revision", status.get("candidateRevision")),
        ("Endpoint", status.get("endpoint")),
        ("Age", age(meta["creationTimestamp"], now) if meta.get("creationTimestamp") else None),
    ]
    lines = [f"{label + ':':<20}{value}" for label, value in fields if value not in (None, "")]
    conditions = status.get("conditions") or []
    lines.append("Conditions:")
    if conditions:
        rows = [["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]]
        rows += [
            [c.get("type", ""), c.get("status", ""), c.get("reason", ""),
             age(c.get("lastTransitionTime", ""), now), c.get("message", "")]
            for c in conditions
        ]  # fmt: skip
        lines += ["  " + line for line in columns(rows).splitlines()]
    else:
        lines.append("  <none>")
    return "\n".join(lines)
