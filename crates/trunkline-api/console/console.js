// trunkline console: one framework-free ES module. It signs in with an API key (kept in this
// tab's sessionStorage only), reads the same HTTP API any client reads, and follows
// GET /v1/events (server-sent events, read with fetch so the key travels in a header) to
// update what is on screen without a reload. Nothing is built: the server embeds this file.

const KEY_ITEM = "trunkline.apiKey";
const PAGE = 100;
const main = document.getElementById("main");
const announcer = document.getElementById("announcer");
const liveStatus = document.getElementById("live");

let session = null; // { key, accountId, name }
let view = null; // the view on screen: { refresh(), onEvent(event) }
let stream = null; // the event stream while signed in

// --- small helpers ----------------------------------------------------------------------------

/** An element with attributes (`on…` are listeners, `text` its text) and children. */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return h("time", { datetime: iso, text: date.toLocaleString() });
}

function announce(text) {
  announcer.textContent = text;
}

/** Runs `fn` once, `ms` after the last of a burst of calls. */
function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A badge whose class says how the state reads: good, bad, busy or off. */
function stateBadge(state) {
  const tone = state === "registered" ? "good"
    : state.startsWith("failed") ? "bad"
    : state === "disabled" ? "off" : "busy";
  return h("span", { class: `badge ${tone}`, "data-state": state, text: state.replace("_", " ") });
}

/** A table whose cells carry their column's name (shown beside each cell at phone width). */
function table(caption, columns, rows) {
  return h("table", { class: "stack" },
    h("caption", { text: caption }),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", {}, rows));
}

function row(columns, cells, attrs = {}) {
  return h("tr", attrs, cells.map((cell, i) => h("td", { "data-label": columns[i] }, cell ?? "—")));
}

/**
 * Runs `render`, which replaces what is inside `container`; if focus was on an element of it
 * marked `data-focus-key`, it moves to the new element with the same key (so a keyboard user
 * keeps their place when a live update redraws a list).
 */
function keepingFocus(container, render) {
  const active = document.activeElement;
  const key = container.contains(active) ? active.closest("[data-focus-key]")?.dataset.focusKey : null;
  render();
  if (key) container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
}

function errorBox(text) {
  return h("p", { class: "error", role: "alert", text });
}

// --- the API ----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The headers of each dialect's key: trunkline's own, Dasha's or Vobiz's. */
function authHeaders(dialect, key = session.key) {
  switch (dialect) {
    case "dasha": return { Authorization: `Bearer ${key}` };
    case "vobiz": return { "X-Auth-ID": session.accountId, "X-Auth-Token": key };
    default: return { "X-API-Key": key };
  }
}

async function call(path, { dialect = "own", key } = {}) {
  const response = await fetch(path, {
    headers: { Accept: "application/json", ...authHeaders(dialect, key) },
    cache: "no-store",
  });
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const said = body && (body.detail || body.error);
    throw new ApiError(response.status, said || `${response.status} ${response.statusText}`);
  }
  return body;
}

/** What to show for a failed call; a key no longer accepted signs the tab out. */
function failure(error) {
  if (error instanceof ApiError && error.status === 401 && session) {
    signOut("The API key is no longer accepted. Sign in again.");
    return null;
  }
  const status = error instanceof ApiError ? ` (HTTP ${error.status})` : "";
  return errorBox(`Could not load: ${error.message}${status}`);
}

// --- live updates -----------------------------------------------------------------------------

/**
 * GET /v1/events as server-sent events. EventSource cannot send the key in a header, so the
 * stream is read with fetch and parsed here; after a drop it reconnects with Last-Event-ID
 * (1 s, doubling to 30 s), and a stream silent for 45 s (keep-alives come every 15 s) counts
 * as dropped.
 */
class EventStream {
  constructor(key, onEvent) {
    this.key = key;
    this.onEvent = onEvent;
    this.lastId = null;
    this.controller = null;
    this.stopped = false;
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
  }

  show(text) {
    liveStatus.textContent = `Live updates: ${text}`;
  }

  async run() {
    let pause = 1000;
    while (!this.stopped) {
      this.controller = new AbortController();
      let silence = null;
      const watch = () => {
        clearTimeout(silence);
        silence = setTimeout(() => this.controller.abort(), 45000);
      };
      try {
        const headers = { Accept: "text/event-stream", "X-API-Key": this.key };
        if (this.lastId !== null) headers["Last-Event-ID"] = this.lastId;
        watch();
        const response = await fetch("/v1/events", {
          headers, cache: "no-store", signal: this.controller.signal,
        });
        const type = response.headers.get("content-type") || "";
        if (response.status === 401) {
          clearTimeout(silence);
          signOut("The API key is no longer accepted. Sign in again.");
          return;
        }
        if (!response.ok || !type.startsWith("text/event-stream")) {
          clearTimeout(silence);
          response.body?.cancel();
          this.show(`unavailable (HTTP ${response.status})`);
          await this.sleep(30000);
          continue;
        }
        this.show("on");
        pause = 1000;
        // Whatever changed while no stream was open shows now.
        view?.refresh();
        await this.read(response.body, watch);
      } catch (error) {
        if (this.stopped) return;
      } finally {
        clearTimeout(silence);
      }
      if (this.stopped) return;
      this.show("reconnecting");
      await this.sleep(pause);
      pause = Math.min(pause * 2, 30000);
    }
  }

  sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  /** Parses the text/event-stream format (WHATWG HTML, "server-sent events"). */
  async read(body, watch) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let data = [];
    let id = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      watch();
      buffer += value;
      // A chunk ending in CR may be half of a CRLF: keep it until the next chunk says.
      const held = buffer.endsWith("\r") ? 1 : 0;
      const lines = buffer.slice(0, buffer.length - held).split(/\r\n|\r|\n/);
      buffer = lines.pop() + (held ? "\r" : "");
      for (const line of lines) {
        if (line === "") {
          if (id !== null) this.lastId = id;
          if (data.length) this.dispatch(data.join("\n"));
          data = [];
          id = null;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "data") data.push(text);
        else if (field === "id" && !text.includes("\0")) id = text;
      }
    }
  }

  dispatch(text) {
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      return;
    }
    if (event && typeof event.type === "string") this.onEvent(event);
  }
}

function onEvent(event) {
  if (event.type.startsWith("registration.") && event.data) {
    const id = event.data.id;
    const state = event.type === "registration.removed" ? "removed" : event.data.state;
    announce(`Registration ${id}: ${state.replace("_", " ")}`);
  }
  view?.onEvent(event);
}

// --- sign in and out --------------------------------------------------------------------------

function showSignIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("session").hidden = true;
  view = null;
  const error = message ? errorBox(message) : null;
  const input = h("input", {
    id: "api-key", name: "api-key", type: "password", autocomplete: "off",
    required: true, "aria-describedby": "api-key-hint",
  });
  const form = h("form", { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title", tabindex: "-1", text: "Sign in" }),
    error,
    h("div", { class: "field" },
      h("label", { for: "api-key", text: "API key" }),
      input,
      h("p", { id: "api-key-hint", class: "hint",
        text: "Any key of your account. It is kept in this tab only and forgotten when the tab closes." })),
    h("button", { type: "submit", class: "primary", text: "Sign in" }));
  form.addEventListener("submit", async (submit) => {
    submit.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    try {
      await signIn(key);
    } catch (failed) {
      const text = failed instanceof ApiError && failed.status === 401
        ? "That API key was not accepted (HTTP 401). Check it and try again."
        : `Could not sign in: ${failed.message}`;
      showSignIn(text);
    }
  });
  main.replaceChildren(form);
  (error ? input : form.querySelector("h1")).focus();
}

async function signIn(key) {
  const account = await call("/v1/account", { key });
  session = { key, accountId: account.accountId, name: account.name };
  sessionStorage.setItem(KEY_ITEM, key);
  document.getElementById("account").textContent = `${account.name} (${account.accountId})`;
  document.getElementById("nav").hidden = false;
  document.getElementById("session").hidden = false;
  stream = new EventStream(key, onEvent);
  stream.show("connecting");
  stream.run();
  if (!location.hash.startsWith("#/")) location.hash = "#/registrations";
  else route();
}

function signOut(message) {
  stream?.stop();
  stream = null;
  session = null;
  sessionStorage.removeItem(KEY_ITEM);
  showSignIn(message);
}

// --- routing ----------------------------------------------------------------------------------

const sections = {
  registrations: (rest) => (rest ? registrationDetail(decodeURIComponent(rest)) : registrationList()),
  trunks: () => trunksView(),
  inbound: () => inboundView(),
  webhooks: () => webhooksView(),
};

function route() {
  if (!session) return;
  const [, name = "registrations", rest = ""] = location.hash.match(/^#\/([a-z]+)\/?(.*)$/) || [];
  const make = sections[name] || sections.registrations;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.section === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  view = make(rest);
  main.replaceChildren(view.element);
  view.element.querySelector("h1")?.focus();
  view.refresh();
}

// --- registrations ----------------------------------------------------------------------------

const STATES = ["registered", "registering", "authenticating", "pending", "unregistering",
  "failed_auth", "failed_timeout", "failed_transport", "failed_registrar", "disabled"];
const LIST_COLUMNS = ["User or number", "Kind", "State", "Last response", "Registrar",
  "Last attempt", "Binding expires"];

function response(status) {
  if (status.lastCode === null || status.lastCode === undefined) return status.lastPhrase || "—";
  return `${status.lastCode} ${status.lastPhrase || ""}`.trim();
}

function registrationList() {
  const filter = { state: "", q: "", offset: 0 };
  const counts = h("div", { class: "counts", role: "group", "aria-label": "Registrations by state" });
  const stateSelect = h("select", { id: "state-filter", name: "state" },
    h("option", { value: "", text: "Any state" }),
    h("option", { value: "failed", text: "Failed (any reason)" }),
    STATES.map((s) => h("option", { value: s, text: s.replace("_", " ") })));
  const search = h("input", { id: "search", name: "q", type: "search", maxlength: "100", autocomplete: "off" });
  const summary = h("p", { class: "note", id: "list-summary" });
  const body = h("div", { id: "registration-table" });
  const previous = h("button", { type: "button", text: "Previous page" });
  const next = h("button", { type: "button", text: "Next page" });
  const element = h("section", { "aria-labelledby": "registrations-title" },
    h("h1", { id: "registrations-title", tabindex: "-1", text: "Registrations" }),
    counts,
    h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
      h("div", { class: "field" }, h("label", { for: "state-filter", text: "State" }), stateSelect),
      h("div", { class: "field" }, h("label", { for: "search", text: "Search user or number" }), search)),
    summary, body, h("div", { class: "pager" }, previous, next));

  let shown = new Map(); // id → the row's item, for live updates
  let loading = 0;

  async function refresh() {
    const ticket = ++loading;
    const query = new URLSearchParams({ limit: PAGE, offset: filter.offset });
    if (filter.state) query.set("state", filter.state);
    if (filter.q) query.set("q", filter.q);
    let list;
    try {
      list = await call(`/v1/registrations?${query}`);
    } catch (error) {
      if (ticket === loading) body.replaceChildren(failure(error) || "");
      return;
    }
    if (ticket !== loading) return; // a newer request is under way
    keepingFocus(counts, () => renderCounts(list.counts));
    shown = new Map(list.items.map((item) => [item.id, item]));
    const rows = list.items.map(listRow);
    keepingFocus(body, () => body.replaceChildren(list.items.length
      ? table("Registrations, failing ones first", LIST_COLUMNS, rows)
      : h("p", { class: "note", text: "No registrations match." })));
    const first = list.total ? list.offset + 1 : 0;
    summary.textContent = `Showing ${first}–${list.offset + list.items.length} of ${list.total}.`;
    previous.disabled = list.offset === 0;
    next.disabled = list.offset + list.items.length >= list.total;
  }

  function renderCounts(byState) {
    const failed = STATES.filter((s) => s.startsWith("failed")).reduce((n, s) => n + byState[s], 0);
    const all = STATES.reduce((n, s) => n + byState[s], 0);
    const chips = [["", `All ${all}`], ["failed", `Failed ${failed}`]];
    for (const s of STATES) if (byState[s]) chips.push([s, `${s.replace("_", " ")} ${byState[s]}`]);
    counts.replaceChildren(...chips.map(([state, text]) => h("button", {
      type: "button", "aria-pressed": String(filter.state === state), "data-state": state,
      "data-focus-key": `count:${state}`, text,
      onclick: () => { stateSelect.value = state; setFilter({ state }); },
    })));
  }

  function listRow(item) {
    const link = h("a", {
      href: `#/registrations/${encodeURIComponent(item.id)}`, "data-focus-key": `row:${item.id}`, text: item.user,
    });
    return row(LIST_COLUMNS, [
      link, item.kind === "dasha" ? "Dasha number" : "Ultravox", stateBadge(item.state),
      response(item), item.registrar, when(item.lastAttemptAt), when(item.expiresAt),
    ], { "data-id": item.id, class: item.state.startsWith("failed") ? "failing" : null });
  }

  function setFilter(change) {
    Object.assign(filter, change, { offset: change.offset ?? 0 });
    refresh();
  }

  const later = debounce(refresh, 300);
  stateSelect.addEventListener("change", () => setFilter({ state: stateSelect.value }));
  search.addEventListener("input", debounce(() => setFilter({ q: search.value.trim() }), 250));
  previous.addEventListener("click", () => setFilter({ offset: Math.max(0, filter.offset - PAGE) }));
  next.addEventListener("click", () => setFilter({ offset: filter.offset + PAGE }));

  function onEvent(event) {
    if (!event.type.startsWith("registration.")) return;
    const status = event.data;
    const item = shown.get(status.id);
    if (item && event.type !== "registration.removed") {
      // The row changes at once; the counts and the filter's choice follow with the next read.
      Object.assign(item, status);
      keepingFocus(body, () => body.querySelector(`tr[data-id="${CSS.escape(status.id)}"]`)?.replaceWith(listRow(item)));
    }
    later();
  }

  return { element, refresh, onEvent };
}

const FACTS = [
  ["State", (s) => stateBadge(s.state)],
  ["Kind", (s) => (s.kind === "dasha" ? "Dasha number" : "Ultravox")],
  ["Last response", response],
  ["Failed by", (s) => s.failedBy],
  ["Consecutive failures", (s) => String(s.consecutiveFailures)],
  ["Last attempt", (s) => when(s.lastAttemptAt)],
  ["Binding expires", (s) => when(s.expiresAt)],
  ["Next attempt", (s) => when(s.nextAttemptAt)],
  ["Transport", (s) => s.transport],
  ["Registrar address", (s) => s.remote],
];
const HISTORY_COLUMNS = ["When", "Request", "Response", "Took", "Transport", "Remote"];

function registrationDetail(id) {
  const path = `/v1/registrations/${encodeURIComponent(id)}`;
  const facts = h("div", { id: "registration-status" });
  const history = h("div", { id: "registration-history" });
  const element = h("section", { "aria-labelledby": "registration-title" },
    h("p", {}, h("a", { href: "#/registrations", text: "← All registrations" })),
    h("h1", { id: "registration-title", tabindex: "-1", text: `Registration ${id}` }),
    facts, h("h2", { text: "Attempt history" }), history);

  function showStatus(status) {
    facts.replaceChildren(h("dl", { class: "facts" },
      FACTS.map(([name, value]) => [h("dt", { text: name }), h("dd", {}, value(status) ?? "—")])));
  }

  async function refresh() {
    try {
      const [status, attempts] = await Promise.all([call(path), call(`${path}/history`)]);
      showStatus(status);
      const rows = attempts.items.map((a) => row(HISTORY_COLUMNS, [
        when(a.at), h("code", { text: a.requestLine }),
        a.code === null ? "no answer" : `${a.code} ${a.phrase || ""}`.trim(),
        `${a.durationMs.toFixed(1)} ms`, a.transport, a.remote,
      ]));
      history.replaceChildren(rows.length
        ? table("Last attempts, newest first", HISTORY_COLUMNS, rows)
        : h("p", { class: "note", text: "No attempt yet." }));
    } catch (error) {
      facts.replaceChildren(failure(error) || "");
    }
  }

  const later = debounce(refresh, 300);
  function onEvent(event) {
    if (!event.type.startsWith("registration.") || event.data.id !== id) return;
    if (event.type === "registration.removed") {
      facts.replaceChildren(errorBox("This registration was deleted."));
      return;
    }
    showStatus(event.data);
    later();
  }

  return { element, refresh, onEvent };
}

// --- trunks and numbers -----------------------------------------------------------------------

const NUMBER_COLUMNS = ["Number", "Registration", "Display name", "Description"];

function trunksView() {
  const content = h("div", {});
  const element = h("section", { "aria-labelledby": "trunks-title" },
    h("h1", { id: "trunks-title", tabindex: "-1", text: "Trunks and numbers" }), content);

  async function refresh() {
    let trunks;
    let numbers;
    try {
      [trunks, numbers] = await Promise.all([
        call("/api/v1/sip-credentials?take=1000", { dialect: "dasha" }),
        call("/api/v1/sip-phone-numbers?take=1000", { dialect: "dasha" }),
      ]);
    } catch (error) {
      content.replaceChildren(failure(error) || "");
      return;
    }
    if (!trunks.items.length) {
      content.replaceChildren(h("p", { class: "note", text: "No trunks yet." }));
      return;
    }
    content.replaceChildren(...trunks.items.map((trunk) => {
      const own = numbers.items.filter((n) => n.credentialsId === trunk.id);
      const rows = own.map((n) => row(NUMBER_COLUMNS, [
        h("a", { href: `#/registrations/${encodeURIComponent(n.phoneNumber)}`, text: n.phoneNumber }),
        n.registration ? stateBadge((n.registrationStatus?.state || "Pending").toLowerCase()) : stateBadge("disabled"),
        n.displayName, n.description,
      ]));
      return h("article", { class: "card", "aria-labelledby": `trunk-${trunk.id}` },
        h("h2", { id: `trunk-${trunk.id}`, text: trunk.description || trunk.server }),
        h("dl", { class: "facts" },
          [["Server", trunk.server], ["Transport", trunk.transport], ["Domain", trunk.domain],
            ["Auth user", trunk.authUser], ["Calls per second", trunk.cpsLimit],
            ["Pacing key", trunk.cpsKey], ["Id", trunk.id]]
            .map(([name, value]) => [h("dt", { text: name }), h("dd", { text: value ?? "—" })])),
        rows.length ? table(`Numbers on ${trunk.server}`, NUMBER_COLUMNS, rows)
          : h("p", { class: "note", text: "No numbers on this trunk." }));
    }));
    if (trunks.totalCount > trunks.items.length) {
      content.append(h("p", { class: "note", text: `The first ${trunks.items.length} of ${trunks.totalCount} trunks.` }));
    }
  }

  const later = debounce(refresh, 300);
  return { element, refresh, onEvent: (e) => e.type.startsWith("registration.") && later() };
}

// --- inbound credentials and their bindings ---------------------------------------------------

const BINDING_COLUMNS = ["Contact", "From", "Transport", "Device", "Registered", "Expires"];

function inboundView() {
  const content = h("div", {});
  const element = h("section", { "aria-labelledby": "inbound-title" },
    h("h1", { id: "inbound-title", tabindex: "-1", text: "Inbound credentials" }), content);
  const base = () => `/api/v1/account/${encodeURIComponent(session.accountId)}`;
  const bindingSlots = new Map(); // credential id → the element its bindings go in

  async function loadBindings(id) {
    const slot = bindingSlots.get(id);
    if (!slot) return;
    try {
      const list = await call(`${base()}/credentials/${id}/registrations`, { dialect: "vobiz" });
      const rows = list.objects.map((b) => row(BINDING_COLUMNS, [
        h("code", { text: b.contact }), b.source, b.transport, b.user_agent,
        when(b.registered_at), when(b.expires_at),
      ]));
      slot.replaceChildren(rows.length
        ? table(`Live bindings of ${slot.dataset.username}`, BINDING_COLUMNS, rows)
        : h("p", { class: "note", text: "No device is registered." }));
    } catch (error) {
      slot.replaceChildren(failure(error) || "");
    }
  }

  async function refresh() {
    const credentials = [];
    try {
      for (let offset = 0; offset < 1000; offset += 100) {
        const page = await call(`${base()}/trunks/credentials?limit=100&offset=${offset}`, { dialect: "vobiz" });
        credentials.push(...page.objects);
        if (offset + page.objects.length >= page.meta.total || !page.objects.length) break;
      }
    } catch (error) {
      content.replaceChildren(failure(error) || "");
      return;
    }
    bindingSlots.clear();
    if (!credentials.length) {
      content.replaceChildren(h("p", { class: "note", text: "No inbound credentials yet." }));
      return;
    }
    content.replaceChildren(...credentials.map((c) => {
      const slot = h("div", { "data-credential": c.id, "data-username": c.username });
      bindingSlots.set(c.id, slot);
      return h("article", { class: "card", "aria-labelledby": `credential-${c.id}` },
        h("h2", { id: `credential-${c.id}`, text: c.username }),
        h("dl", { class: "facts" },
          [["Realm", c.realm], ["Enabled", c.enabled ? "yes" : "no"], ["Description", c.description], ["Id", c.id]]
            .map(([name, value]) => [h("dt", { text: name }), h("dd", { text: value ?? "—" })])),
        slot);
    }));
    await Promise.all(credentials.map((c) => loadBindings(c.id)));
  }

  const pending = new Map();
  function onEvent(event) {
    if (!event.type.startsWith("binding.")) return;
    const id = event.data.credentialId;
    if (!pending.has(id)) pending.set(id, debounce(() => loadBindings(id), 200));
    pending.get(id)();
    announce(`Credential binding ${event.type === "binding.created" ? "added" : "removed"}: ${event.data.contact}`);
  }

  return { element, refresh, onEvent };
}

// --- webhooks ---------------------------------------------------------------------------------

const DELIVERY_COLUMNS = ["When", "Event", "Type", "Attempt", "Status", "Took", "Error", "Next attempt"];

function webhooksView() {
  const content = h("div", {});
  const element = h("section", { "aria-labelledby": "webhooks-title" },
    h("h1", { id: "webhooks-title", tabindex: "-1", text: "Webhooks" }), content);

  async function refresh() {
    let hooks;
    try {
      hooks = await call("/v1/webhooks");
    } catch (error) {
      content.replaceChildren(error instanceof ApiError && error.status === 404
        ? h("p", { class: "note", text: "This server has no webhooks API." })
        : failure(error) || "");
      return;
    }
    if (!hooks.items.length) {
      content.replaceChildren(h("p", { class: "note", text: "No webhook endpoints yet." }));
      return;
    }
    const cards = await Promise.all(hooks.items.map(async (hook) => {
      let deliveries;
      try {
        const list = await call(`/v1/webhooks/${encodeURIComponent(hook.id)}/deliveries`);
        const rows = list.items.map((d) => row(DELIVERY_COLUMNS, [
          when(d.at), h("code", { text: d.eventId }), d.type, String(d.attempt),
          d.statusCode === null ? "—" : String(d.statusCode),
          d.durationMs === null ? "—" : `${d.durationMs} ms`, d.error, when(d.nextAttemptAt),
        ]));
        deliveries = rows.length ? table(`Recent deliveries to ${hook.url}`, DELIVERY_COLUMNS, rows)
          : h("p", { class: "note", text: "Nothing delivered yet." });
      } catch (error) {
        deliveries = failure(error) || "";
      }
      return h("article", { class: "card", "aria-labelledby": `hook-${hook.id}` },
        h("h2", { id: `hook-${hook.id}`, class: "wrap", text: hook.url }),
        h("dl", { class: "facts" },
          [["Enabled", hook.enabled ? "yes" : "no"], ["Disabled because", hook.disabledReason],
            ["Events", (hook.types || []).join(", ") || "all"], ["Description", hook.description],
            ["Id", hook.id]]
            .map(([name, value]) => [h("dt", { text: name }), h("dd", { text: value ?? "—" })])),
        deliveries);
    }));
    content.replaceChildren(...cards);
  }

  const later = debounce(refresh, 1000);
  return { element, refresh, onEvent: () => later() };
}

// --- start ------------------------------------------------------------------------------------

document.getElementById("sign-out").addEventListener("click", () => signOut());
document.getElementById("skip").addEventListener("click", (click) => {
  click.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", route);

const remembered = sessionStorage.getItem(KEY_ITEM);
if (remembered) {
  signIn(remembered).catch(() => signOut("Sign in again."));
} else {
  showSignIn();
}
