"""InferenceModels rendered like ``kubectl get`` (from a server-side Table) and ``kubectl describe``."""

from __future__ import annotations

import datetime as dt

from inferflux.cli.tables import age, columns, describe, render_table

NOW = dt.datetime(2026, 11, 23, 12, 0, 0, tzinfo=dt.UTC)
# The shape the API server returns for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
TABLE = {
    "kind": "Table",
    "apiVersion": "meta.k8s.io/v1",
    "columnDefinitions": [
        {"name": "Name", "type": "string", "priority": 0},
        {"name": "Ready", "type": "string", "priority": 0},
        {"name": "Status", "type": "string", "priority": 0},
        {"name": "Engine", "type": "string", "priority": 0},
        {"name": "Model", "type": "string", "priority": 1},
        {"name": "Replicas", "type": "integer", "priority": 0},
        {"name": "Age", "type": "date", "priority": 0},
    ],
    "rows": [
        {
            "cells": ["gemma3-270m", "True", "Serving", "llamacpp", "gemma3-270m", 2, "2026-11-23T11:55:00Z"],
            "object": {"metadata": {"name": "gemma3-270m", "namespace": "team-a"}},
        },
        {
            "cells": ["gpt", "False", "SecretMissing", "provider", None, None, "2026-11-20T12:00:00Z"],
            "object": {"metadata": {"name": "gpt", "namespace": "team-b"}},
        },
    ],
}


def test_ages_read_like_kubectl() -> None:
    assert age("2026-11-23T11:59:15Z", NOW) == "45s"
    assert age("2026-11-23T11:48:00Z", NOW) == "12m"
    assert age("2026-11-23T07:00:00Z", NOW) == "5h"
    assert age("2026-11-20T12:00:00Z", NOW) == "3d"


def test_a_table_renders_the_printer_columns() -> None:
    assert render_table(TABLE, NOW).splitlines() == [
        "NAME          READY   STATUS          ENGINE     REPLICAS   AGE",
        "gemma3-270m   True    Serving         llamacpp   2          5m",
        "gpt           False   SecretMissing   provider   <none>     3d",
    ]


def test_wide_and_all_namespaces_add_columns() -> None:
    lines = render_table(TABLE, NOW, wide=True, namespaces=True).splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS", "ENGINE", "MODEL", "REPLICAS", "AGE"]
    assert lines[1].split()[:2] == ["team-a", "gemma3-270m"]
    assert lines[2].split()[5] == "<none>"


def test_an_empty_table_renders_nothing() -> None:
    assert render_table({**TABLE, "rows": []}, NOW) == ""


def test_describe_shows_spec_status_and_every_condition() -> None:
    model = {
        "metadata": {"name": "gemma3-270m", "namespace": "team-a", "generation": 3,
                     "creationTimestamp": "2026-11-23T10:00:00Z"},
        "spec": {"engine": "llamacpp", "replicas": 2,
                 "source": {"uri": "pvc://models/g.gguf", "sha256": "a5fd3b62230aa5ec60212297dc9d20ea" * 2}},
        "status": {
            "observedGeneration": 3, "readyReplicas": 1, "activeRevision": "5f1c2a9b3e",
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Serving", "message": "1/2 replicas ready",
                 "lastTransitionTime": "2026-11-23T11:50:00Z"},
                {"type": "Degraded", "status": "True", "reason": "ReplicasUnavailable",
                 "message": "1 replica not ready", "lastTransitionTime": "2026-11-23T11:58:00Z"},
            ],
        },
    }  # fmt: skip
    text = describe(model, NOW)
    assert "Generation:         3 (observed 3)" in text
    assert "Source:             pvc://models/g.gguf (sha256 a5fd3b62230a…)" in text
    assert "Replicas:           1 ready / 2 desired" in text
    assert "Served name:        gemma3-270m" in text
    assert text.splitlines()[-3:] == [
        "  TYPE       STATUS   REASON                AGE   MESSAGE",
        "  Ready      True     Serving               10m   1/2 replicas ready",
        "  Degraded   True     ReplicasUnavailable   2m    1 replica not ready",
    ]


def test_describe_without_status_says_none() -> None:
    text = describe({"metadata": {"name": "x"}, "spec": {"engine": "provider"}}, NOW)
    assert text.endswith("Conditions:\n  <none>")


def test_columns_pad_to_the_widest_cell() -> None:
    assert columns([["A", "B"], ["long", "x"]]) == "A      B\nlong   x"
