"""The admin console on the real control plane, in a real browser.

Acceptance of issue 24, item 1: a model applied with ``kubectl`` goes from not Ready to Ready on
the console's Models page, pushed over SSE without a reload; a stalled model shows its reason; a
request's trace is one click away in a real trace backend.

The operator runs as a process under its ServiceAccount (test_operator.py's fixtures) and publishes
the routing table with each model's conditions; a real router process follows that ConfigMap as
the router's ServiceAccount (manifests/base RBAC), as it does in a cluster, and exports its traces
to Jaeger (jaeger_fixture.py). KWOK plays the kubelet; the model's pods are held un-Ready by the e2e
stage annotation until the test lifts it, so the page shows the model before it is Ready. Debian's
chromium is driven by Playwright, as in tests/router/admin/test_console_browser.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster_fixture import e2e_suite, llamacpp_model, operator_suite
from playwright.sync_api import Browser, Page, expect

from tests.chromium import launched_chromium

_ops = operator_suite()
admin = _ops.admin
operator_kubeconfig = _ops.operator_kubeconfig
operator = _ops.operator
namespace = _ops.namespace


_stz = e2e_suite("test_scale_to_zero.py")  # its router process on the routing ConfigMap
router_rbac = _stz.router_rbac

TOKEN = "console-cluster-admin-token-0123456789"
HOLD = _stz.HOLD
WAIT_MS = 90_000  # a model's first rollout on a shared, loaded machine


@pytest.fixture(scope="module")
def router(
    admin: Any, operator: Any, router_rbac: None, jaeger: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A router on the operator's routing ConfigMap, as the router's ServiceAccount, tracing to Jaeger.

    Started before the browser: Playwright's sync API holds the thread's event loop afterwards.
    """
    folder = tmp_path_factory.mktemp("console-cluster")
    kubeconfig = _stz._tenants.router_kubeconfig(admin, folder)
    (folder / "admin-token").write_text(TOKEN)
    env = {
        "INFERFLUX_ADMIN_TOKEN_FILE": str(folder / "admin-token"),
        "INFERFLUX_CONNECT_TIMEOUT_SECONDS": "1",  # KWOK's pod addresses have nothing behind them
        "INFERFLUX_ROUTER_RETRIES": "0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_endpoint,
        "INFERFLUX_OTEL_SAMPLE_RATIO": "1",
        "INFERFLUX_CONSOLE_TRACE_URL": f"{jaeger.query_url}/api/traces/{{trace_id}}",
    }
    with _stz.router(kubeconfig, folder, **env) as process:
        yield process


@pytest.fixture(scope="module")
def browser(router: Any) -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, router: Any) -> Iterator[Page]:
    """A signed-in console page."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    opened = context.new_page()
    opened.goto(f"http://127.0.0.1:{router.admin_port}/console/")
    opened.get_by_label("Admin token or admin API key").fill(TOKEN)
    opened.get_by_role("button", name="Sign in").click()
    expect(opened.locator("#live")).to_have_text("Live", timeout=WAIT_MS)
    yield opened
    context.close()


def held_model(name: str, namespace: str) -> dict[str, Any]:
    """A llama.cpp model whose pods KWOK keeps un-Ready until the annotation leaves them."""
    body = llamacpp_model(name, namespace)
    body["metadata"]["annotations"] = {HOLD: "true"}
    return body


def release_pods(kube: Any, name: str, namespace: str) -> list[str]:
    """Lift the hold from the model's pods (once there are some); their names."""
    pods = [pod["metadata"]["name"] for pod in kube.items("pods", namespace, f"inferflux.io/model={name}")]
    for pod in pods:
        kube.run("annotate", "pod", pod, "-n", namespace, f"{HOLD}-")
    return pods


def routed(router: Any, model: str) -> bool:
    """Whether the router's own table lists a replica of ``model`` (its admin snapshot)."""
    snapshot = httpx.get(
        f"http://127.0.0.1:{router.admin_port}/admin/v1/console/snapshot",
        headers={"authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).json()
    return any(entry["name"] == model and entry["replicas"] for entry in snapshot["models"])


def test_a_model_applied_with_kubectl_turns_ready_on_the_models_page_live(
    page: Page, admin: Any, namespace: str
) -> None:
    page.evaluate("window.notReloaded = true")
    admin.apply(
        held_model("console-held", namespace),
        llamacpp_model("console-stalled", namespace, engineArgs={"extraArgs": ["--listen-everywhere"]}),
    )
    held = page.locator('tr[data-model="console-held"]')
    state = held.locator('[data-field="state-text"]')
    expect(state).to_have_text(re.compile(r"^Progressing \("), timeout=WAIT_MS)
    expect(held).to_contain_text("0 (not ready)")

    stalled = page.locator('tr[data-model="console-stalled"]')
    expect(stalled.locator('[data-field="state-text"]')).to_have_text(
        re.compile(r"^Stalled \("), timeout=WAIT_MS
    )
    expect(stalled.locator('[data-field="state"]')).to_contain_text("--listen-everywhere")

    pods = _ops.wait_for("the held model's pods", lambda: release_pods(admin, "console-held", namespace))
    expect(state).to_have_text("Ready (Serving)", timeout=WAIT_MS)  # pushed over SSE
    expect(held.get_by_role("listitem")).to_have_text(pods)
    assert page.evaluate("window.notReloaded") is True, "the page was never reloaded"
    if folder := os.environ.get("INFERFLUX_CONSOLE_SCREENSHOTS"):  # docs/console.md
        page.screenshot(path=str(Path(folder) / "console-models-cluster.png"))


def test_a_failed_request_is_listed_with_its_breakdown_and_its_trace_opens_in_jaeger(
    page: Page, admin: Any, namespace: str, router: Any, jaeger: Any
) -> None:
    admin.apply(llamacpp_model("console-traced", namespace))
    _ops.wait_for("the router to route console-traced to a replica", lambda: routed(router, "console-traced"))
    page.get_by_role("tab", name="Traces").click()
    chat = {"model": "console-traced", "messages": [{"role": "user", "content": "private words"}]}
    answered = httpx.post(f"http://127.0.0.1:{router.port}/v1/chat/completions", json=chat, timeout=60)
    # Nothing serves a model at KWOK's pod addresses: refused, timed out, or whatever listens there.
    assert answered.status_code >= 400, answered.text
    row = page.locator(f'tr[data-request="{answered.headers["x-request-id"]}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row.locator('[data-field="status"]')).to_have_text(re.compile(rf"^{answered.status_code} \w+"))
    for field in ("total", "queue", "upstream"):
        expect(row.locator(f'[data-field="{field}"]')).to_have_text(re.compile(r"^\d+(\.\d)? ms$"))
    link = row.get_by_role("link", name=re.compile("^Trace [0-9a-f]{32} in the trace backend$"))
    expect(link).to_be_visible(timeout=WAIT_MS)  # a failed trace is always kept
    trace_id = (link.get_attribute("href") or "").rsplit("/", 1)[1]
    assert "private words" not in page.content()

    jaeger.wait_trace(trace_id, spans=1)
    link.click()
    expect(page.locator("body")).to_contain_text(trace_id, timeout=WAIT_MS)
