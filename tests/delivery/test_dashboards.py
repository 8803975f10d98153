"""The Grafana dashboards in the chart: one per component, and every query names an exported metric.

The exported names are collected from the registries the router and the runtime build (every
metrics class registered the way the processes register them), not from a hand-written list, so a
renamed or removed metric fails this test until the dashboards follow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from inferflux.router.app import Router
from inferflux.router.budgets.metrics import BudgetMetrics
from inferflux.router.guardrails.verdicts import GuardrailMetrics
from inferflux.router.identity.api_keys import KeyHasher
from inferflux.router.settings import Settings
from inferflux.runtime.metrics import RuntimeMetrics

Render = Callable[..., list[dict[str, Any]]]

# PromQL words that are not metric names: aggregation modifiers, binary operators, set operations.
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
}
IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _exported() -> set[str]:
    """Every series name the router and a runtime expose (``_total``, ``_bucket``, ... included)."""
    router = Router(Settings(auth=True), hasher=KeyHasher(b"k" * 32))  # auth on: its counter too
    registry = router.metrics.registry
    BudgetMetrics(registry)  # registered by router/__main__.py when budgets are on
    GuardrailMetrics(registry)  # likewise, when guardrails are on
    registries: list[CollectorRegistry] = [registry, RuntimeMetrics().registry]
    # The registry's name index holds every exposed name of every collector (suffixes included).
    return {name for r in registries for name in r._names_to_collectors}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels, ranges and keywords left out)."""
    variable = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", expr)  # Grafana's variable query
    if variable:
        expr = variable.group(1)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings: label values, regexes
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    names = set()
    for match in IDENTIFIER.finditer(text):
        name = match.group()
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or name in KEYWORDS or text[match.start() - 1 : match.start()].isdigit():
            continue  # a function call, a keyword, or the exponent/unit of a number
        names.add(name)
    return names


def test_the_query_reader_finds_metrics_and_skips_the_rest() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, model) (rate(a_bucket{model=~"$model", x="y(z)"}[5m])))'
        " / on (model) group_left b_total offset 1h + 1e3"
    )
    assert metric_names(expr) == {"a_bucket", "b_total"}
    assert metric_names("label_values(c_total, model)") == {"c_total"}


@pytest.fixture(scope="module")
def exported() -> set[str]:
    return _exported()


@pytest.fixture(scope="module")
def dashboards(render_chart: Render) -> dict[str, dict[str, Any]]:
    objs = render_chart({"metrics": {"dashboards": {"enabled": True, "folder": "InferFlux"}}})
    maps = [
        o
        for o in objs
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("inferflux-dashboard-")
    ]
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "InferFlux"
    return {name: json.loads(text) for o in maps for name, text in o["data"].items()}


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable."""
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            yield f"variable {variable['name']}", query


def test_monitoring_dashboards_are_off_by_default(render_chart: Render) -> None:
    assert not [o for o in render_chart({}) if o["metadata"]["name"].startswith("inferflux-dashboard-")]


def test_one_dashboard_per_component(dashboards: dict[str, dict[str, Any]]) -> None:
    assert set(dashboards) == {"inferflux-router.json", "inferflux-runtime.json", "inferflux-operator.json"}
    uids = [dashboard["uid"] for dashboard in dashboards.values()]
    assert len(set(uids)) == len(uids)


def test_every_query_names_only_metrics_the_code_exports(
    dashboards: dict[str, dict[str, Any]], exported: set[str]
) -> None:
    unknown = []
    for file, dashboard in dashboards.items():
        for where, expr in _queries(dashboard):
            names = metric_names(expr)
            if not names:
                unknown.append((file, where, "names no metric", expr))
            unknown.extend((file, where, name, expr) for name in names - exported)
    assert unknown == []


def test_the_on_call_panels_are_there(dashboards: dict[str, dict[str, Any]]) -> None:
    def queried(file: str) -> set[str]:
        return {name for _, expr in _queries(dashboards[file]) for name in metric_names(expr)}

    router = queried("inferflux-router.json")
    for needed in (
        "inferflux_router_requests_total",  # RPS and errors by code
        "inferflux_router_upstream_errors_total",
        "inferflux_router_ttft_seconds_bucket",
        "inferflux_router_time_per_output_token_seconds_bucket",
        "inferflux_router_queue_depth",
        "inferflux_router_in_flight",
        "inferflux_router_budget_used_ratio",
        "inferflux_router_guardrail_verdicts_total",
        "inferflux_router_tenant_tokens_total",
    ):
        assert needed in router
    runtime = queried("inferflux-runtime.json")
    for needed in (
        "inferflux_runtime_time_to_first_token_seconds_bucket",
        "inferflux_runtime_time_per_output_token_seconds_bucket",
        "inferflux_runtime_queue_depth",
        "inferflux_runtime_queue_wait_seconds_bucket",
    ):
        assert needed in runtime
    assert queried("inferflux-operator.json")
    latency = [
        target
        for panel in _panels(dashboards["inferflux-router.json"])
        for target in panel.get("targets", [])
        if "request_duration_seconds_bucket" in target["expr"]
    ]
    assert latency
    assert all(target.get("exemplar") for target in latency), "latency panels show exemplars (trace links)"
