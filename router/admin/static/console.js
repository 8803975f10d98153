// The InferFlux admin console: tabs, a live snapshot over SSE, tenants and keys, audit export.
// The admin token lives in sessionStorage (this tab only) and goes out as a bearer token.
const API = "/admin/v1";
const TOKEN = "inferflux.adminToken";
const $ = (id) => document.getElementById(id);
let stream = null;

function token() { return sessionStorage.getItem(TOKEN); }

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

async function api(method, path, body, signal) {
  const headers = { authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  if (response.status === 401) { signOut("The token was refused; sign in again."); throw new Error("signed out"); }
  if (!response.ok) {
    const error = await response.json().catch(() => ({}));
    throw new Error(error?.error?.message || `HTTP ${response.status}`);
  }
  return response;
}

// Tabs: arrow keys, Home and End move between them (WAI-ARIA tabs pattern).
function selectTab(tab) {
  for (const other of document.querySelectorAll('[role="tab"]')) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    $(other.getAttribute("aria-controls")).hidden = !selected;
  }
  tab.focus();
  if (tab.id === "tab-tenants") loadTenants();
}

function setUpTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      selectTab(tabs[(moves[event.key] + tabs.length) % tabs.length]);
    });
  });
}

function showModels(models) {
  const body = $("models");
  body.replaceChildren();
  if (!models.length) {
    const row = element("tr");
    row.append(element("td", "No model in the routing table.", { colspan: "7" }));
    body.append(row);
  }
  for (const model of models) {
    const row = element("tr", null, { "data-model": model.name });
    row.append(element("th", model.name, { scope: "row" }));
    const state = element("td", null, { "data-field": "state" });
    state.append(element("span", model.reason ? `${model.state} (${model.reason})` : model.state, { "data-field": "state-text" }));
    if (model.message) state.append(element("span", model.message, { class: "detail" }));
    row.append(state);
    row.append(element("td", model.provider ? `${model.engine} (${model.provider})` : model.engine));
    row.append(element("td", model.revision || "—"));
    const replicas = element("td");
    if (model.replicas.length) {
      const list = element("ul");
      for (const replica of model.replicas) list.append(element("li", replica.pod || replica.url));
      replicas.append(list);
    } else {
      replicas.textContent = model.provider ? "provider" : (model.scaleToZero ? "0 (scaled to zero)" : "0 (not ready)");
    }
    row.append(replicas);
    row.append(element("td", model.queued, { "data-field": "queued" }));
    row.append(element("td", model.inFlight, { "data-field": "inFlight" }));
    body.append(row);
  }
}

function showVerdicts(guardrails) {
  const list = $("verdicts");
  list.replaceChildren();
  if (!guardrails.enabled) { list.append(element("li", "Guardrails are off on this router.")); return; }
  if (!guardrails.recent.length) { list.append(element("li", "No verdict since this router started.")); return; }
  for (const entry of guardrails.recent) {
    const parts = entry.verdicts.map((v) => `${v.direction} ${v.check} ${v.subject}: ${v.action}, count ${v.count}`);
    const item = element("li", `${entry.time} · tenant ${entry.tenant ?? "(none)"} · ${parts.join("; ")}`);
    item.dataset.sequence = entry.sequence;
    list.append(item);
  }
}

function ms(value) { return value === null || value === undefined ? "—" : `${value} ms`; }

function traceCell(entry, links) {
  const cell = element("td", null, { "data-field": "trace" });
  if (!entry.traceId) { cell.textContent = "tracing off"; return cell; }
  const short = entry.traceId.slice(0, 8);
  if (entry.traceUrl) {
    cell.append(element("a", `trace ${short}`, { href: entry.traceUrl, "aria-label": `Trace ${entry.traceId} in the trace backend` }));
  } else if (entry.traceKept === null) {
    cell.textContent = `${short}, deciding`;
  } else if (!entry.traceKept) {
    cell.textContent = `${short}, not sampled`;
  } else {
    cell.textContent = links ? short : `${short} (no INFERFLUX_CONSOLE_TRACE_URL)`;
  }
  return cell;
}

function showRequests(requests) {
  const body = $("requests");
  body.replaceChildren();
  $("traces-state").textContent = requests.enabled ? "" : "Recent requests are off on this router (INFERFLUX_CONSOLE_RECENT_REQUESTS=0).";
  if (requests.enabled && !requests.recent.length) {
    const row = element("tr");
    row.append(element("td", "No request since this router started.", { colspan: "9" }));
    body.append(row);
  }
  for (const entry of requests.recent) {
    const row = element("tr", null, { "data-request": entry.requestId });
    row.append(element("td", entry.time.slice(11, 23)));
    row.append(element("th", entry.model, { scope: "row" }));
    row.append(element("td", entry.tenant ?? "—"));
    row.append(element("td", entry.error ? `${entry.status} ${entry.error}` : entry.status, { "data-field": "status" }));
    row.append(element("td", ms(entry.totalMs), { "data-field": "total" }));
    row.append(element("td", ms(entry.queueMs), { "data-field": "queue" }));
    row.append(element("td", ms(entry.upstreamMs), { "data-field": "upstream" }));
    row.append(element("td", ms(entry.ttftMs), { "data-field": "ttft" }));
    row.append(traceCell(entry, requests.traceLinks));
    body.append(row);
  }
}

// Server-Sent Events over fetch, so that the bearer token goes in a header (EventSource cannot).
async function follow() {
  const controller = new AbortController();
  stream = controller;
  while (stream === controller) {
    try {
      const response = await api("GET", "/console/events", undefined, controller.signal);
      $("live").textContent = "Live";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done || stream !== controller) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame.split("\n").filter((line) => line.startsWith("data: ")).map((line) => line.slice(6)).join("\n");
          if (data) {
            const snapshot = JSON.parse(data);
            showModels(snapshot.models);
            showVerdicts(snapshot.guardrails);
            showRequests(snapshot.requests);
          }
        }
      }
    } catch (error) {
      if (stream !== controller) return;
    }
    if (stream === controller) {
      $("live").textContent = "Reconnecting…";
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

function budgetText(budget) {
  if (!budget) return "no budget";
  const limits = ["daily", "monthly", "total"].filter((w) => budget[w]).map((w) => `${w} ${budget[w]}`);
  return limits.length ? `${limits.join(", ")} (pricing file's currency)` : "no limit";
}

// A meter whose accessible name says what it measures; its value is also written out beside it.
function meter(label, value, max, optimum) {
  return element("meter", null, { min: "0", max: String(max), value: String(Math.min(value, max)), low: String(max * 0.8), high: String(max * 0.999), optimum: String(optimum), "aria-label": label });
}

function showUsage(box, tenant, usage) {
  const list = element("ul", null, { class: "usage", "aria-label": `Usage of ${tenant}`, "data-usage": tenant });
  if (usage.budgets === "off") {
    list.append(element("li", "Budgets and rate limits are off on this router: nothing is metered."));
    box.append(list);
    return;
  }
  for (const w of usage.windows) {
    const text = w.limit === null
      ? `${w.window} (${w.period}): spent ${w.spent} ${usage.currency}, ${w.reserved} held in flight, no limit`
      : `${w.window} (${w.period}): spent ${w.spent} of ${w.limit} ${usage.currency} (${w.usedPercent}%), ${w.reserved} held in flight`;
    const item = element("li", null, { "data-window": w.window });
    item.append(element("span", text));
    if (w.limit !== null) item.append(meter(`${w.window} spend of ${tenant}: ${w.usedPercent}% of the limit`, w.usedPercent, 100, 0));
    list.append(item);
  }
  const rates = usage.rateLimits;
  for (const [kind, rate] of [["requests", rates.requests], ["tokens", rates.tokens]]) {
    const item = element("li", null, { "data-rate": kind });
    if (!rate) { item.textContent = `${kind} per minute: no limit`; list.append(item); continue; }
    item.append(element("span", `${kind}: ${rate.remaining} of ${rate.capacity} left now (limit ${rate.limitPerMinute} per minute, full again in ${rate.resetSeconds} s)`));
    item.append(meter(`${kind} per minute of ${tenant} left: ${rate.remaining} of ${rate.capacity}`, rate.remaining, rate.capacity, rate.capacity));
    list.append(item);
  }
  for (const note of usage.notes) list.append(element("li", `Note: ${note}.`, { class: "note" }));
  box.append(list);
}

async function loadUsage(box, tenant) {
  try {
    showUsage(box, tenant, await (await api("GET", `/tenants/${tenant}/usage`)).json());
  } catch (error) {
    box.append(element("p", `Usage cannot be read now: ${error.message}`, { class: "error" }));
  }
}

async function loadTenants() {
  $("tenants-error").textContent = "";
  try {
    const tenants = (await (await api("GET", "/tenants")).json()).data;
    const container = $("tenants");
    const select = $("key-tenant");
    const chosen = select.value;
    container.replaceChildren();
    select.replaceChildren();
    if (!tenants.length) container.append(element("p", "No tenant yet."));
    for (const tenant of tenants) {
      select.append(element("option", tenant.name, { value: tenant.name }));
      const box = element("article", null, { class: "tenant", "aria-label": `Tenant ${tenant.name}` });
      box.append(element("h3", tenant.name + (tenant.suspended ? " (suspended)" : "")));
      box.append(element("p", `Budget: ${budgetText(tenant.budget)} · source: ${tenant.source}`));
      await loadUsage(box, tenant.name);
      const keys = (await (await api("GET", `/tenants/${tenant.name}/keys`)).json()).data;
      const table = element("table");
      table.append(element("caption", `Keys of ${tenant.name}`, { class: "visually-hidden" }));
      const head = element("tr");
      for (const title of ["Key", "Name", "Created", "State", "Action"]) head.append(element("th", title, { scope: "col" }));
      table.append(head);
      for (const key of keys) {
        const row = element("tr", null, { "data-key": key.id });
        row.append(element("td", `${key.id} …${key.last4}`));
        row.append(element("td", key.name || "—"));
        row.append(element("td", key.createdAt));
        row.append(element("td", key.revokedAt ? `revoked ${key.revokedAt}` : "active"));
        const action = element("td");
        if (!key.revokedAt) {
          const button = element("button", "Revoke", { type: "button", class: "secondary", "aria-label": `Revoke key ${key.id}` });
          button.addEventListener("click", () => revoke(key.id));
          action.append(button);
        }
        row.append(action);
        table.append(row);
      }
      if (!keys.length) box.append(element("p", "No key."));
      else { const scroll = element("div", null, { class: "scroll", tabindex: "0", role: "region", "aria-label": `Keys of ${tenant.name}` }); scroll.append(table); box.append(scroll); }
      container.append(box);
    }
    if (chosen) select.value = chosen;
  } catch (error) {
    $("tenants-error").textContent = error.message;
  }
}

async function revoke(id) {
  try {
    await api("POST", `/keys/${id}/revoke`);
    $("new-key").textContent = `Key ${id} revoked.`;
  } catch (error) {
    $("tenants-error").textContent = error.message;
  }
  await loadTenants();
}

async function createKey(event) {
  event.preventDefault();
  $("tenants-error").textContent = "";
  const tenant = $("key-tenant").value;
  try {
    const created = await (await api("POST", `/tenants/${tenant}/keys`, { name: $("key-name").value })).json();
    const shown = $("new-key");
    shown.replaceChildren(
      element("p", `New key ${created.record.id} for ${tenant}. Copy it now: it is shown only once.`),
      element("p", created.key, { class: "key-secret", id: "new-key-value" }),
    );
    $("key-name").value = "";
  } catch (error) {
    $("tenants-error").textContent = error.message;
  }
  await loadTenants();
}

async function exportAudit(event) {
  event.preventDefault();
  const query = new URLSearchParams();
  const tenant = $("audit-tenant").value.trim();
  if (tenant) query.set("tenant", tenant);
  for (const name of ["since", "until"]) {
    const value = $(`audit-${name}`).value;
    if (value) query.set(name, value.length === 16 ? `${value}:00Z` : `${value}Z`);
  }
  const result = $("audit-result");
  try {
    const text = await (await api("GET", `/audit?${query}`)).text();
    const lines = text.split("\n").filter(Boolean);
    result.textContent = `${lines.length} record${lines.length === 1 ? "" : "s"} exported.`;
    const link = $("audit-download");
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([text], { type: "application/x-ndjson" }));
    link.hidden = false;
    const preview = $("audit-preview");
    preview.textContent = lines.slice(0, 20).join("\n") + (lines.length > 20 ? "\n…" : "");
    preview.hidden = !lines.length;
  } catch (error) {
    result.textContent = `Export failed: ${error.message}`;
  }
}

function signedIn() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  follow();
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN);
  stream?.abort();
  stream = null;
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("live").textContent = "Not signed in";
  $("login-error").textContent = message;
}

async function signIn(event) {
  event.preventDefault();
  const candidate = $("token").value.trim();
  const response = await fetch(`${API}/policy`, { headers: { authorization: `Bearer ${candidate}` } });
  if (!response.ok) {
    $("login-error").textContent = response.status === 403 ? "This credential lacks the admin scope." : "This token was refused.";
    return;
  }
  sessionStorage.setItem(TOKEN, candidate);
  $("token").value = "";
  $("login-error").textContent = "";
  signedIn();
}

setUpTabs();
$("login-form").addEventListener("submit", signIn);
$("logout").addEventListener("click", () => signOut());
$("key-form").addEventListener("submit", createKey);
$("tenants-refresh").addEventListener("click", () => loadTenants());
$("audit-form").addEventListener("submit", exportAudit);
if (token()) signedIn();
