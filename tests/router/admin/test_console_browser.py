"""The admin console in a real browser: Debian's chromium, driven by Playwright, against a real
router process (``python -m inferflux.router``) with its audit log on, its guardrails on, and budgets
on (a real redis-server, tests/redis_server.py, and a small pricing file).

The routing table comes from a file, and its one model's replica is the mock OpenAI backend
(tests/router/mock_openai.py): the console reads the router's own routing table and queues, and
what answers behind the router does not matter here. Tracing is on, every trace kept, exported over
OTLP/HTTP to `TraceReceiver`, a test fixture standing where a trace backend would (a real Jaeger
runs in e2e/test_traces.py): it records the trace ids it receives and shows a page per trace, so
the Traces page's links are followed to something that holds the trace. An axe-core scan (npm,
tests/router/admin/axe) of every page, wide and narrow, must find no serious or critical violation. Set
``INFERFLUX_CONSOLE_SCREENSHOTS`` to a folder to keep a screenshot of each page (docs/console.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from aiohttp import web
from playwright.sync_api import Browser, Page, expect

from inferflux.prompts.checksum import jcs_checksum
from inferflux.router.audit import signing
from tests.chromium import launched_chromium
from tests.router.mock_openai import MockOpenAI, MockState

router_process = importlib.import_module("inferflux_tests_router_process")
redis_server = importlib.import_module("inferflux_tests_redis_server")

AXE_DIR = Path(__file__).with_name("axe")
AXE = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
TOKEN = "console-admin-token-0123456789"
MODEL = "chat"
CARD = "4111 1111 1111 1111"  # Luhn-valid: the default policy redacts payment cards
PAGES = ("models", "tenants", "guardrails", "audit", "traces")
WAIT_MS = 15_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TraceReceiver:
    """OTLP/JSON traces in (``POST /v1/traces``), one page per received trace out (``/trace/{id}``)."""

    def __init__(self) -> None:
        self.spans: dict[str, list[str]] = {}  # trace id: span names
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> TraceReceiver:
        app = web.Application()
        app.router.add_post("/v1/traces", self.receive)
        app.router.add_get("/trace/{trace_id}", self.page)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def receive(self, request: web.Request) -> web.Response:
        document = await request.json()
        for resource in document.get("resourceSpans", []):
            for scope in resource.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    self.spans.setdefault(span["traceId"], []).append(span["name"])
        return web.json_response({})

    async def page(self, request: web.Request) -> web.Response:
        trace_id = request.match_info["trace_id"]
        if trace_id not in self.spans:
            raise web.HTTPNotFound()
        spans = len(self.spans[trace_id])
        html = f"<!doctype html><title>Trace</title><h1>Trace {trace_id}</h1><p>{spans} spans</p>"
        return web.Response(text=html, content_type="text/html")

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class Backend:
    """The mock OpenAI backend on its own event loop in a thread, which also starts and stops the
    router process: the tests are sync, and Playwright's sync API holds this thread's loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.mock: MockOpenAI = self.run(MockOpenAI(MockState()).start())
        self.traces: TraceReceiver = self.run(TraceReceiver().start())

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def close(self) -> None:
        self.run(self.mock.stop())
        self.run(self.traces.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def axe() -> str:
    """axe-core's source, installed from npm by its lock file when missing."""
    if not AXE.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=AXE_DIR, check=True, timeout=300)
    return AXE.read_text()


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("console")
    backend = Backend()
    routes = folder / "routes.json"
    model = {
        "name": MODEL,
        "engine": "llamacpp",
        "endpoints": [{"url": backend.mock.url, "pod": "chat-0"}],
        "conditions": [  # as the operator publishes them (a table from inferctl has none)
            {"type": "Ready", "status": "True", "reason": "Serving", "message": "1/1 runtime pods Ready"},
            {"type": "Progressing", "status": "False", "reason": "RolloutComplete", "message": ""},
        ],
    }
    routes.write_text(json.dumps({"version": 1, "models": {MODEL: model}}))
    (folder / "hash-secret").write_bytes(os.urandom(32).hex().encode())
    (folder / "audit-secret").write_bytes(os.urandom(32).hex().encode())
    (folder / "admin-token").write_text(TOKEN)
    signing.generate(folder / "audit.pem", folder / "audit.pub")
    # Every output token costs 0.001 EUR, an input token 0.000001: a request's reservation (its
    # body's bytes and max_tokens) stays well under the 0.01 daily budget of the usage test.
    pricing: dict[str, Any] = {
        "version": "console-1",
        "currency": "EUR",
        "models": {MODEL: {"inputPerMillion": "1", "outputPerMillion": "1000", "maxOutputTokens": 8}},
    }
    pricing["checksum"] = jcs_checksum(pricing)
    (folder / "pricing.yaml").write_text(yaml.safe_dump(pricing))
    redis = redis_server.RedisServer(folder / "redis").start()
    env = {key: value for key, value in os.environ.items() if not key.startswith("INFERFLUX_")}
    env.update(
        INFERFLUX_ROUTER_PORT=str(free_port()),
        INFERFLUX_ADMIN_PORT=str(free_port()),
        INFERFLUX_ROUTES_FILE=str(routes),
        INFERFLUX_AUTH_SECRET_FILE=str(folder / "hash-secret"),
        INFERFLUX_ADMIN_TOKEN_FILE=str(folder / "admin-token"),
        INFERFLUX_AUDIT_DIR=str(folder / "audit"),
        INFERFLUX_AUDIT_CHAIN="router-0",
        INFERFLUX_AUDIT_SIGNING_KEY_FILE=str(folder / "audit.pem"),
        INFERFLUX_AUDIT_SECRET_FILE=str(folder / "audit-secret"),
        INFERFLUX_LOG_LEVEL="warning",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{backend.traces.url}/v1/traces",
        INFERFLUX_OTEL_SAMPLE_RATIO="1",
        INFERFLUX_CONSOLE_TRACE_URL=f"{backend.traces.url}/trace/{{trace_id}}",
        INFERFLUX_REDIS_URL=redis.url,
        INFERFLUX_PRICING_FILE=str(folder / "pricing.yaml"),
    )
    process = router_process.RouterProcess(env, folder / "router.log", TOKEN)
    process.traces = backend.traces
    try:
        backend.run(process.start())
        yield process
    finally:
        backend.run(process.stop())
        backend.close()
        redis.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    opened = context.new_page()
    yield opened
    context.close()


def admin(router: Any, method: str, path: str, body: Any = None) -> Any:
    url = f"http://127.0.0.1:{router.admin_port}/admin/v1{path}"
    response = requests.request(
        method, url, json=body, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert response.status_code < 300, response.text
    return response.json()


def tenant_with_key(router: Any, tenant: str) -> str:
    admin(router, "PUT", f"/tenants/{tenant}", {})
    return str(admin(router, "POST", f"/tenants/{tenant}/keys", {"name": "test"})["key"])


def chat(router: Any, key: str, text: str) -> requests.Response:
    return requests.post(
        f"http://127.0.0.1:{router.port}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 3},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def sign_in(page: Page, router: Any, token: str = TOKEN) -> None:
    page.goto(f"http://127.0.0.1:{router.admin_port}/console/")
    page.get_by_label("Admin token or admin API key").fill(token)
    page.get_by_role("button", name="Sign in").click()


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    expect(page.get_by_role("tabpanel", name=name)).to_be_visible()


def test_a_wrong_token_is_refused_and_the_right_one_shows_the_models_live(page: Page, router: Any) -> None:
    sign_in(page, router, "not-the-admin-token-at-all")
    expect(page.get_by_role("alert")).to_have_text("This token was refused.")
    expect(page.locator("#app")).to_be_hidden()

    sign_in(page, router)
    row = page.locator(f'tr[data-model="{MODEL}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row.get_by_role("listitem")).to_have_text("chat-0")
    expect(row.locator('[data-field="state"]')).to_have_text("Ready (Serving)1/1 runtime pods Ready")
    expect(row.locator('[data-field="inFlight"]')).to_have_text("0")
    expect(page.locator("#live")).to_have_text("Live")

    page.reload()  # the token stays for this tab
    expect(row).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Admin token or admin API key")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_the_static_page_holds_no_data_and_the_live_routes_need_the_token(router: Any) -> None:
    base = f"http://127.0.0.1:{router.admin_port}"
    assert requests.get(f"{base}/console/", timeout=10).status_code == 200
    for path in ("/admin/v1/console/snapshot", "/admin/v1/console/events", "/admin/v1/guardrails/verdicts"):
        refused = requests.get(base + path, timeout=10)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_token"


def test_a_key_created_in_the_console_works_until_it_is_revoked_there(page: Page, router: Any) -> None:
    admin(router, "PUT", "/tenants/team-keys", {"budget": {"monthly": "25.00"}})
    sign_in(page, router)
    open_tab(page, "Tenants")
    tenant = page.get_by_role("article", name="Tenant team-keys")
    expect(tenant).to_contain_text("Budget: monthly 25.00 (pricing file's currency)")
    page.get_by_label("Tenant", exact=True).select_option("team-keys")
    page.get_by_label("Key name").fill("from the console")
    page.get_by_role("button", name="Create key").click()
    shown = page.locator("#new-key-value")
    expect(shown).to_be_visible()
    key = shown.inner_text().strip()
    assert key.startswith("ifx_")

    answered = chat(router, key, "hello")
    assert answered.status_code == 200, answered.text
    row = tenant.locator("tr", has_text="from the console")
    expect(row).to_contain_text("active")
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked")

    refused = chat(router, key, "hello")
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"


def test_a_request_by_a_tenant_key_shows_as_spend_and_rate_use_on_the_tenants_page(
    page: Page, router: Any
) -> None:
    # One request a minute (a burst of one) and two tokens a minute: the request's tokens (more than
    # two) stay counted for minutes, so the page is read well within that on a slow machine too.
    limits = {"budget": {"daily": "0.01"}, "rateLimits": {"requestsPerMinute": 1, "tokensPerMinute": 2}}
    admin(router, "PUT", "/tenants/team-usage", limits)
    key = str(admin(router, "POST", "/tenants/team-usage/keys", {"name": "usage"})["key"])
    sign_in(page, router)
    open_tab(page, "Tenants")
    usage = page.get_by_role("list", name="Usage of team-usage")
    expect(usage.locator('[data-window="daily"]')).to_contain_text(
        "spent 0.00 of 0.01 EUR (0%)", timeout=WAIT_MS
    )
    expect(usage.locator('[data-rate="requests"]')).to_contain_text("requests: 1 of 1 left now")
    expect(usage.locator('[data-rate="tokens"]')).to_contain_text("tokens: 2 of 2 left now")

    assert chat(router, key, "hello").status_code == 200
    body: dict[str, Any] = {}
    for _ in range(100):  # the settle lands in the background, just after the response
        body = admin(router, "GET", "/tenants/team-usage/usage")
        if body["windows"][0]["spent"] != "0.00":
            break
        page.wait_for_timeout(100)
    daily = body["windows"][0]
    assert daily["spent"] != "0.00", body
    assert daily["usedPercent"] > 0

    page.get_by_role("button", name="Refresh usage").click()
    expect(usage.locator('[data-window="daily"]')).to_contain_text(
        f"spent {daily['spent']} of 0.01 EUR ({daily['usedPercent']}%)", timeout=WAIT_MS
    )
    meter = page.get_by_role("meter", name=f"daily spend of team-usage: {daily['usedPercent']}% of the limit")
    expect(meter).to_have_attribute("value", str(daily["usedPercent"]))
    expect(usage.locator('[data-rate="requests"]')).to_contain_text("requests: 0 of 1 left now")
    tokens_left = int(usage.locator('[data-rate="tokens"] span').inner_text().split()[1])
    assert tokens_left < 2  # the request's tokens count against the minute
    expect(page.get_by_role("meter", name="requests per minute of team-usage left: 0 of 1")).to_be_visible()


def test_a_guardrail_verdict_appears_live_without_the_value(page: Page, router: Any) -> None:
    key = tenant_with_key(router, "team-pii")
    sign_in(page, router)
    open_tab(page, "Guardrails")
    verdicts = page.get_by_role("tabpanel", name="Guardrails").locator("li", has_text="tenant team-pii")
    expect(verdicts).to_have_count(0)

    answered = chat(router, key, f"my card is {CARD}, thanks")
    assert answered.status_code == 200, answered.text
    expect(verdicts).to_have_count(1, timeout=WAIT_MS)  # pushed over SSE, no reload
    expect(verdicts).to_contain_text("input pii card: redact, count 1")
    assert CARD not in page.content()
    assert "1111" not in page.content()


def test_audit_records_of_a_tenant_and_a_time_range_are_exported(page: Page, router: Any) -> None:
    key = tenant_with_key(router, "team-audit")
    assert chat(router, key, "hello").status_code == 200
    now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    sign_in(page, router)
    open_tab(page, "Audit")
    page.get_by_label("Tenant (empty: every record)").fill("team-audit")
    page.get_by_label("From (UTC)").fill((now - dt.timedelta(hours=1)).isoformat())
    page.get_by_label("Until (UTC)").fill((now + dt.timedelta(hours=1)).isoformat())
    page.get_by_role("button", name="Export").click()
    expect(page.locator("#audit-result")).to_contain_text("records exported")
    count = int(page.locator("#audit-result").inner_text().split()[0])
    assert count >= 3  # the tenant's creation, its key's creation, and the chat request
    records = [json.loads(line) for line in page.locator("#audit-preview").inner_text().splitlines()]
    assert {record.get("tenant") for record in records} == {"team-audit"}
    assert any(record.get("model") == MODEL for record in records)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the records (NDJSON)").click()
    assert len(Path(download.value.path()).read_text().splitlines()) == count

    page.get_by_label("Until (UTC)").fill((now - dt.timedelta(hours=2)).isoformat())  # before it all
    page.get_by_label("From (UTC)").fill((now - dt.timedelta(hours=3)).isoformat())
    page.get_by_role("button", name="Export").click()
    expect(page.locator("#audit-result")).to_have_text("0 records exported.")


def test_a_request_appears_live_on_the_traces_page_with_its_breakdown_and_trace_link(
    page: Page, router: Any
) -> None:
    key = tenant_with_key(router, "team-traces")
    sign_in(page, router)
    open_tab(page, "Traces")
    rows = page.get_by_role("tabpanel", name="Traces").locator("tr[data-request]", has_text="team-traces")
    expect(rows).to_have_count(0)

    answered = requests.post(
        f"http://127.0.0.1:{router.port}/v1/chat/completions",
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": "a secret question"}],
            "max_tokens": 3,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answered.status_code == 200, answered.text
    request_id = answered.headers["x-request-id"]
    row = page.locator(f'tr[data-request="{request_id}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)  # pushed over SSE, no reload
    expect(row.locator('[data-field="status"]')).to_have_text("200")
    for field in ("total", "queue", "upstream", "ttft"):
        expect(row.locator(f'[data-field="{field}"]')).to_have_text(re.compile(r"^\d+(\.\d)? ms$"))
    link = row.get_by_role("link", name=re.compile("^Trace [0-9a-f]{32} in the trace backend$"))
    expect(link).to_be_visible(timeout=WAIT_MS)
    href = link.get_attribute("href")
    assert href is not None
    assert href.startswith(f"{router.traces.url}/trace/")
    trace_id = href.rsplit("/", 1)[1]
    assert "a secret question" not in page.content()

    # Kept spans are exported in the background: the link can show before the backend has them.
    deadline = time.monotonic() + WAIT_MS / 1000
    while trace_id not in router.traces.spans:
        assert time.monotonic() < deadline, "the router never exported the trace it links to"
        time.sleep(0.05)
    link.click()  # to the trace backend, which holds that trace with the router's spans
    expect(page.get_by_role("heading", name=f"Trace {trace_id}")).to_be_visible(timeout=WAIT_MS)
    assert any(name.startswith("POST /v1/chat/completions") for name in router.traces.spans[trace_id])


def test_tabs_follow_the_arrow_keys(page: Page, router: Any) -> None:
    sign_in(page, router)
    models = page.get_by_role("tab", name="Models")
    models.focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Tenants")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tab", name="Tenants")).to_be_focused()
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="Traces")).to_be_focused()
    expect(page.get_by_role("tabpanel", name="Traces")).to_contain_text("most recent requests")
    page.keyboard.press("ArrowRight")  # wraps around
    expect(models).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel", name="Tenants")).to_be_hidden()


@pytest.mark.parametrize("width", [1100, 360])
def test_no_page_has_a_serious_accessibility_violation(
    browser: Browser, router: Any, axe: str, width: int, tmp_path: Path
) -> None:
    # A tenant with limits and a key: the Tenants page has its usage meters and a table of keys.
    limits = {
        "budget": {"daily": "5.00"},
        "rateLimits": {"requestsPerMinute": 600, "tokensPerMinute": 90_000},
    }
    admin(router, "PUT", "/tenants/team-axe", limits)
    key = str(admin(router, "POST", "/tenants/team-axe/keys", {"name": "test"})["key"])
    assert chat(router, key, "hello").status_code == 200  # and the Traces page a request
    # axe-core is injected as an inline script, which the console's CSP refuses: bypassed here only.
    context = browser.new_context(viewport={"width": width, "height": 800}, bypass_csp=True)
    page = context.new_page()
    keep = os.environ.get("INFERFLUX_CONSOLE_SCREENSHOTS")
    try:
        page.goto(f"http://127.0.0.1:{router.admin_port}/console/")
        scans = {"login": scan(page, axe)}
        shoot(page, keep, "login", width)
        sign_in(page, router)
        expect(page.locator("tr[data-model]").first).to_be_visible(timeout=WAIT_MS)
        for name in PAGES:
            open_tab(page, name.capitalize())
            if name == "tenants":
                expect(page.get_by_role("meter").first).to_be_visible(timeout=WAIT_MS)
            if name == "traces":
                expect(page.locator("tr[data-request] a").first).to_be_visible(timeout=WAIT_MS)
            scans[name] = scan(page, axe)
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
            shoot(page, keep, name, width)
    finally:
        context.close()
    serious = {
        name: [(v["id"], v["impact"]) for v in violations if v["impact"] in ("serious", "critical")]
        for name, violations in scans.items()
    }
    assert serious == {name: [] for name in scans}


def scan(page: Page, axe: str) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe)
    result: dict[str, Any] = page.evaluate("axe.run(document)")
    return list(result["violations"])


def shoot(page: Page, folder: str | None, name: str, width: int) -> None:
    """Keep a screenshot of the page (wide ones, and the narrow models page) in ``folder``."""
    if not folder or (width < 500 and name != "models"):
        return
    suffix = "-narrow" if width < 500 else ""
    page.screenshot(path=str(Path(folder) / f"console-{name}{suffix}.png"))
