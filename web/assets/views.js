// The portal's pages. Each view takes the route's parameters and returns a DOM node; all data
// comes from the JSON API with the visitor's token.
import { api, enc } from "./api.js";
import { timelineChart } from "./chart.js";
import {
  badge, codeBlock, emptyState, errorPanel, h, httpCode, idText, loading, notify, relativeTime,
  statusBadge, timeEl, clear,
} from "./dom.js";

const PAGE_SIZE = 20;

export const href = (...parts) => "#/" + parts.map(enc).join("/");

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : "";
}

function pageHead(title, ...rest) {
  return h("section.page-head", h("h1", title), ...rest);
}

function card(title, ...children) {
  return h("section.card", title ? h("div.card-head", ...[].concat(title)) : null, ...children);
}

function table(headers, rows, cls = "") {
  return h(`div.table-wrap${cls}`,
    h("table", h("thead", h("tr", headers.map((t) => h("th", { scope: "col" }, t)))), h("tbody", rows)));
}

// Previous/Next for an iterator-paged list. `go(iterator)` navigates.
function pager(page, current, go) {
  const prevDisabled = !current || (current.startsWith("-") && page.data.length < PAGE_SIZE);
  const nextDisabled = page.done && !(current && current.startsWith("-"));
  if (!current && nextDisabled) return null; // everything fits on this page
  return h("nav.pager", { "aria-label": "pages" },
    h("button.secondary", { type: "button", disabled: !current, onclick: () => go("") }, "Newest"),
    h("button.secondary", { type: "button", disabled: prevDisabled, onclick: () => go(page.prevIterator) }, "← Previous"),
    h("button.secondary", { type: "button", disabled: nextDisabled || !page.iterator, onclick: () => go(page.iterator) }, "Next →"));
}

function deliveriesText(m) {
  const d = m.deliveries || {};
  const parts = [];
  if (d.success) parts.push(`${d.success} succeeded`);
  if (d.fail) parts.push(`${d.fail} failed`);
  if (d.pending) parts.push(`${d.pending} pending`);
  if (d.sending) parts.push(`${d.sending} sending`);
  return parts.length ? parts.join(" · ") : "no endpoint subscribed";
}

function rateEl(health) {
  if (!health || health.successRate === null || health.successRate === undefined) {
    return h("span.muted", `no attempts in ${health ? health.windowHours : 24} h`);
  }
  const pct = health.successRate * 100;
  const cls = pct >= 95 ? "ok" : pct >= 80 ? "wait" : "bad";
  const bar = h(`span.rate-bar.${cls}`);
  bar.style.width = `${Math.max(2, pct)}%`;
  return h("div.rate",
    h(`strong.rate-text.${cls}`, `${pct.toFixed(pct === 100 || pct === 0 ? 0 : 1)}%`),
    h("span.rate-track", { "aria-hidden": "true" }, bar),
    h("span.muted.small", `${health.success} of ${health.success + health.fail} in ${health.windowHours} h`));
}

function endpointState(ep) {
  if (ep.disabled) {
    return h("div", badge("bad", "⏻", "Disabled"), ep.disabledReason ? h("p.reason", ep.disabledReason) : null);
  }
  return badge("ok", "●", "Enabled");
}

// ---------------------------------------------------------------------------------------
// Sign-in

export function signInView({ message, onToken }) {
  const input = h("input", { id: "token", type: "password", name: "token", autocomplete: "off", required: true, spellcheck: "false" });
  const error = h("p.field-error", { id: "signin-error", role: "alert" }, message || "");
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form.signin", {
    onsubmit: async (e) => {
      e.preventDefault();
      button.disabled = true;
      error.textContent = "";
      try {
        await onToken(input.value.trim());
      } catch (err) {
        error.textContent = err.status === 401 ? "This token is not valid or has expired." : err.message;
        button.disabled = false;
      }
    },
  },
  h("h1", "Sign in to the delivery portal"),
  h("label", { for: "token" }, "API token"),
  input,
  h("p.hint", "An admin token shows every application. Your customers open the link you give them and never see this page."),
  error,
  button);
  return h("div.signin-wrap", form);
}

// ---------------------------------------------------------------------------------------
// Applications (admins)

export async function appsView(ctx, { iterator }) {
  const page = await api("GET", "app", { query: { limit: PAGE_SIZE, iterator } });
  ctx.crumbs([["Applications"]]);
  const rows = page.data.map((a) =>
    h("tr.clickable", { onclick: () => ctx.go(href("app", a.id)) },
      h("td", h("a", { href: href("app", a.id) }, a.name)),
      h("td", a.uid ? h("code", a.uid) : h("span.muted", "—")),
      h("td", idText(a.id)),
      h("td", timeEl(a.createdAt))));
  return h("div",
    pageHead("Applications", h("p.muted", "Each application is one of your customers.")),
    card(null, page.data.length
      ? [table(["Name", "UID", "ID", "Created"], rows), pager(page, iterator, (it) => ctx.go("#/apps" + query({ iterator: it })))]
      : emptyState("No applications yet.", "Create one with POST /api/v1/app.")));
}

// ---------------------------------------------------------------------------------------
// One application: its endpoints and messages

async function customerLink(app, out) {
  const res = await api("POST", `auth/app-portal-access/${enc(app.id)}`, { body: {} });
  const field = h("input.link", { type: "text", readonly: true, value: res.url, "aria-label": "customer link" });
  clear(out).append(
    h("p.small", "Give this link to the customer: it opens this application only, for 7 days, with no sign-in."),
    h("div.row", field,
      h("button.secondary", { type: "button", onclick: async () => {
        field.select();
        try {
          await navigator.clipboard.writeText(res.url);
          notify("Link copied");
        } catch {
          notify("Select the link and copy it", "info");
        }
      } }, "Copy")));
}

export async function appView(ctx, { app: appKey, status, event_types: eventTypes, iterator }) {
  const app = await api("GET", `app/${enc(appKey)}`);
  const base = `app/${enc(app.id)}`;
  const [endpoints, messages, types] = await Promise.all([
    api("GET", `${base}/endpoint`, { query: { limit: 250, with_health: true } }),
    api("GET", `${base}/msg`, { query: { limit: PAGE_SIZE, iterator, status, event_types: eventTypes, with_content: false } }),
    api("GET", "event-type", { query: { limit: 250 } }).catch(() => ({ data: [] })),
  ]);
  ctx.crumbs([["Applications", "#/apps", "admin"], [app.name]]);
  ctx.setApp(app);

  const linkOut = h("div.link-out");
  const head = pageHead(app.name,
    h("p.meta", app.uid ? h("span", "UID ", h("code", app.uid)) : null, h("span", "ID ", idText(app.id))),
    ctx.whoami.appId ? null : h("div.head-actions",
      h("button.secondary", { type: "button", id: "customer-link", onclick: () => customerLink(app, linkOut).catch((e) => notify(e.message, "error")) }, "Customer link"),
      linkOut));

  // Endpoints with their health.
  const epRows = endpoints.data.map((ep) => {
    const last = ep.health && ep.health.lastAttempt;
    return h("tr.clickable", { onclick: (e) => { if (e.target.tagName !== "A") ctx.go(href("app", app.id, "endpoint", ep.id)); } },
      h("td.url-cell", h("a", { href: href("app", app.id, "endpoint", ep.id), class: "url" }, ep.url),
        ep.description ? h("div.muted.small", ep.description) : null),
      h("td", endpointState(ep)),
      h("td", rateEl(ep.health)),
      h("td", last
        ? h("div.last", statusBadge(last.status), " ", httpCode(last.responseStatusCode), h("div.small", timeEl(last.timestamp), " ", h("span.muted", relativeTime(last.timestamp))))
        : h("span.muted", "never")));
  });
  const addButton = ctx.whoami.readOnly ? null : h("a.button", { href: href("app", app.id, "endpoints", "new") }, "Add endpoint");
  const endpointsCard = card([h("h2", "Endpoints"), addButton],
    endpoints.data.length ? table(["URL", "State", "Success rate (24 h)", "Last attempt"], epRows, ".endpoints")
      : emptyState("No endpoints yet.", "Add an endpoint to start receiving webhooks."));

  // Messages, newest first, filtered.
  const statusSelect = h("select", { id: "filter-status", name: "status" },
    [["", "Any status"], ["0", "Succeeded"], ["2", "Failed"], ["1", "Pending"], ["3", "Sending"]].map(([v, t]) =>
      h("option", { value: v, selected: (status ?? "") === v }, t)));
  const typeInput = h("input", { id: "filter-type", name: "event_types", list: "event-type-list", placeholder: "any event type", value: eventTypes ?? "" });
  const filters = h("form.filters", {
    onsubmit: (e) => {
      e.preventDefault();
      ctx.go(href("app", app.id) + query({ status: statusSelect.value, event_types: typeInput.value.trim() }));
    },
  },
  h("label", "Status ", statusSelect),
  h("label", "Event type ", typeInput),
  h("datalist", { id: "event-type-list" }, types.data.map((t) => h("option", { value: t.name }))),
  h("button", { type: "submit" }, "Filter"),
  status || eventTypes ? h("a.button.secondary", { href: href("app", app.id) }, "Clear") : null);

  const msgRows = messages.data.map((m) =>
    h("tr.clickable", { onclick: (e) => { if (e.target.tagName !== "A") ctx.go(href("app", app.id, "msg", m.id)); } },
      h("td", statusBadge(m.deliveryStatus)),
      h("td", h("code.event", m.eventType)),
      h("td", h("a", { href: href("app", app.id, "msg", m.id) }, idText(m.id)), m.eventId ? h("div.muted.small", m.eventId) : null),
      h("td.small", deliveriesText(m)),
      h("td", timeEl(m.timestamp))));
  const filtered = status || eventTypes;
  const messagesCard = card([h("h2", "Messages")], filters,
    messages.data.length
      ? [table(["Status", "Event type", "Message", "Endpoints", "Sent"], msgRows, ".messages"),
        pager(messages, iterator, (it) => ctx.go(href("app", app.id) + query({ status, event_types: eventTypes, iterator: it })))]
      : emptyState(filtered ? "No messages match these filters." : "No messages yet.",
        filtered ? null : "Messages appear here as soon as they are sent."));
  return h("div", head, endpointsCard, messagesCard);
}

// ---------------------------------------------------------------------------------------
// One message: payload and attempts per endpoint

function headersTable(headers) {
  const entries = Object.entries(headers || {});
  if (!entries.length) return h("p.muted", "No request headers recorded.");
  return h("table.headers", h("tbody", entries.map(([k, v]) =>
    h("tr", h("th", { scope: "row" }, k), h("td", h("code", v))))));
}

function attemptRow(a, open) {
  return h("details.attempt", { open, dataset: { attemptId: a.id } },
    h("summary",
      statusBadge(a.status),
      httpCode(a.responseStatusCode),
      h("span.duration", `${a.responseDurationMs} ms`),
      timeEl(a.timestamp),
      a.triggerType === 1 ? h("span.tag", "manual") : null),
    h("div.attempt-body",
      h("div", h("h4", "Response body"), codeBlock(a.response, "response body")),
      h("div", h("h4", "Request headers"), headersTable(a.requestHeaders))));
}

async function deliveryCard(ctx, app, msg, ep) {
  const attempts = await api("GET", `app/${enc(app.id)}/attempt/msg/${enc(msg.id)}`, {
    query: { endpoint_id: ep.id, limit: 250, with_content: true },
  });
  const resend = ctx.whoami.readOnly ? null : h("button.secondary", { type: "button", class: "resend", disabled: ep.disabled,
    title: ep.disabled ? "The endpoint is disabled" : "Deliver this message to the endpoint again now",
    onclick: async (e) => {
      const button = e.currentTarget;
      button.disabled = true;
      button.textContent = "Resending…";
      try {
        await api("POST", `app/${enc(app.id)}/msg/${enc(msg.id)}/endpoint/${enc(ep.id)}/resend`, { body: {} });
        notify("Resend queued: the new attempt appears below once made.");
        const before = attempts.data.length;
        const deadline = Date.now() + 15000;
        while (Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 400));
          if ((await countAttempts(app, msg, ep, before)) > before) break;
        }
        const fresh = await deliveryCard(ctx, app, msg, await refreshEndpointState(app, msg, ep));
        el.replaceWith(fresh);
      } catch (err) {
        notify(`Resend failed: ${err.message}`, "error");
        button.disabled = false;
        button.textContent = "Resend";
      }
    } }, "Resend");
  const el = h("section.delivery", { dataset: { endpointId: ep.id } },
    h("div.delivery-head",
      h("div",
        h("a.url", { href: href("app", app.id, "endpoint", ep.id) }, ep.url),
        h("div.small.muted", `${attempts.data.length} attempt${attempts.data.length === 1 ? "" : "s"}`,
          ep.nextAttempt ? [" · next try ", timeEl(ep.nextAttempt)] : null)),
      h("div.delivery-actions", statusBadge(ep.status), resend)),
    attempts.data.length
      ? h("div.attempts", attempts.data.map((a, i) => attemptRow(a, i === 0)))
      : emptyState("No attempt yet.", "The first attempt is made within moments."));
  return el;
}

// How many attempts the endpoint has for the message now (cheap: stops past `before`).
async function countAttempts(app, msg, ep, before) {
  const page = await api("GET", `app/${enc(app.id)}/attempt/msg/${enc(msg.id)}`, {
    query: { endpoint_id: ep.id, limit: Math.min(250, before + 1), with_content: false },
  });
  return page.data.length;
}

async function refreshEndpointState(app, msg, ep) {
  const list = await api("GET", `app/${enc(app.id)}/msg/${enc(msg.id)}/endpoint`);
  return list.data.findLast((d) => d.id === ep.id) || ep;
}

// The same rule as the API's message status: fail if any endpoint's latest delivery failed,
// else sending, else pending, else success; null without endpoints.
function overallStatus(states) {
  for (const s of [2, 3, 1, 0]) if (states.includes(s)) return s;
  return null;
}

function summaryOf(states) {
  const count = (s) => states.filter((x) => x === s).length;
  return { deliveries: { success: count(0), pending: count(1), sending: count(3), fail: count(2) } };
}

export async function messageView(ctx, { app: appKey, msg: msgKey }) {
  const app = await api("GET", `app/${enc(appKey)}`);
  const msg = await api("GET", `app/${enc(app.id)}/msg/${enc(msgKey)}`);
  const listed = await api("GET", `app/${enc(app.id)}/msg/${enc(msg.id)}/endpoint`);
  // One row per delivery (a resend adds one): keep each endpoint's latest, listed last.
  const latest = new Map();
  for (const d of listed.data) latest.set(d.id, d);
  const deliveries = { data: [...latest.values()] };
  const states = deliveries.data.map((d) => d.status);
  msg.deliveryStatus = overallStatus(states);
  msg.deliveries = summaryOf(states).deliveries;
  ctx.crumbs([["Applications", "#/apps", "admin"], [app.name, href("app", app.id)], [msg.id]]);
  ctx.setApp(app);
  const cards = await Promise.all(deliveries.data.map((ep) => deliveryCard(ctx, app, msg, ep)));
  return h("div",
    pageHead(h("span", h("code.event", msg.eventType)),
      h("div.meta",
        statusBadge(msg.deliveryStatus),
        h("span", "ID ", idText(msg.id)),
        msg.eventId ? h("span", "Event ID ", h("code", msg.eventId)) : null,
        h("span", "Sent ", timeEl(msg.timestamp)),
        msg.channels ? h("span", "Channels ", msg.channels.join(", ")) : null,
        msg.tags ? h("span", "Tags ", msg.tags.join(", ")) : null)),
    card(h("h2", "Payload"), msg.payloadExpired ? emptyState("The payload was removed by retention.") : codeBlock(msg.payload, "payload")),
    card([h("h2", "Deliveries"), h("span.muted.small", deliveriesText(msg))],
      cards.length ? cards : emptyState("No endpoint was subscribed to this message.")));
}

// ---------------------------------------------------------------------------------------
// One endpoint: details, actions, chart, recent attempts

const RANGES = {
  "1h": { ms: 3600e3, bucket: "minute", label: "1 hour" },
  "24h": { ms: 24 * 3600e3, bucket: "hour", label: "24 hours" },
  "7d": { ms: 7 * 24 * 3600e3, bucket: "hour", label: "7 days" },
  "30d": { ms: 30 * 24 * 3600e3, bucket: "day", label: "30 days" },
};

async function chartCard(app, ep, range) {
  const body = h("div.chart-body", loading("Loading the chart"));
  const buttons = Object.keys(RANGES).map((k) =>
    h("button.range", { type: "button", "aria-pressed": k === range ? "true" : "false", dataset: { range: k },
      onclick: () => draw(k) }, k));
  async function draw(k) {
    for (const b of buttons) b.setAttribute("aria-pressed", b.dataset.range === k ? "true" : "false");
    const rr = RANGES[k];
    const u = new Date();
    const sn = new Date(u.getTime() - rr.ms);
    clear(body).append(loading("Loading the chart"));
    try {
      const tl = await api("GET", `app/${enc(app.id)}/endpoint/${enc(ep.id)}/stats/timeline`, {
        query: { since: sn.toISOString(), until: u.toISOString(), bucket: rr.bucket },
      });
      const ok = tl.data.reduce((n, b) => n + b.success, 0);
      const bad = tl.data.reduce((n, b) => n + b.fail, 0);
      clear(body).append(
        h("div.chart-summary",
          h("span.legend.ok", h("span.swatch", { "aria-hidden": "true" }), `${ok} succeeded`),
          h("span.legend.bad", h("span.swatch", { "aria-hidden": "true" }), `${bad} failed`),
          h("span.muted", ok + bad ? `${((ok / (ok + bad)) * 100).toFixed(1)}% success over ${rr.label}` : `no attempts in the last ${rr.label}`)),
        timelineChart(tl.data, tl.bucket));
    } catch (err) {
      clear(body).append(h("p.field-error", err.message));
    }
  }
  draw(range);
  return card([h("h2", "Attempts over time"), h("div.ranges", { role: "group", "aria-label": "range" }, buttons)], body);
}

function detailList(pairs) {
  return h("dl.details", pairs.filter(Boolean).map(([k, v]) => [h("dt", k), h("dd", v)]));
}

// How each signatureScheme is named, and where its signature goes (docs/SIGNATURES.md).
const SCHEMES = {
  standard: { label: "Standard Webhooks", header: "webhook-signature" },
  stripe: { label: "Stripe", header: "Stripe-Signature" },
  github: { label: "GitHub", header: "X-Hub-Signature-256" },
  ed25519: { label: "Ed25519 (Standard Webhooks v1a)", header: "webhook-signature" },
};

function schemeOf(ep) {
  return SCHEMES[ep.signatureScheme] || SCHEMES.standard;
}

function signatureText(ep) {
  const scheme = schemeOf(ep);
  return `${scheme.label}, in ${ep.signatureHeader || scheme.header}`;
}

function secretBlock(app, ep) {
  const out = h("div.secret-out");
  const reveal = h("button.secondary", { type: "button", id: "reveal-secret", onclick: async () => {
    try {
      const s = await api("GET", `app/${enc(app.id)}/endpoint/${enc(ep.id)}/secret`);
      clear(out).append(h("code.secret", s.key),
        h("button.secondary", { type: "button", onclick: () => { clear(out).append(reveal); } }, "Hide"));
    } catch (err) {
      notify(err.message, "error");
    }
  } }, "Reveal");
  out.append(reveal);
  const header = ep.signatureHeader || schemeOf(ep).header;
  const asymmetric = ep.signatureScheme === "ed25519";
  return h("div.secret",
    h("h3", asymmetric ? "Public key" : "Signing secret"),
    h("p.small.muted", asymmetric
      ? `Use it to verify the v1a signatures in the ${header} header of each delivery. It is public: herald keeps the private key.`
      : `Use it to verify the ${header} header of each delivery. Keep it private.`),
    out);
}

function actionsCard(ctx, app, ep, types) {
  const toggle = h("button", { type: "button", id: "toggle-endpoint", class: ep.disabled ? "" : "danger-outline",
    onclick: async () => {
      toggle.disabled = true;
      try {
        await api("PATCH", `app/${enc(app.id)}/endpoint/${enc(ep.id)}`, { body: { disabled: !ep.disabled } });
        notify(ep.disabled ? "Endpoint enabled" : "Endpoint disabled");
        ctx.reload();
      } catch (err) {
        notify(err.message, "error");
        toggle.disabled = false;
      }
    } }, ep.disabled ? "Enable endpoint" : "Disable endpoint");

  const confirmArea = h("div.confirm-area");
  const rotate = h("button.secondary", { type: "button", id: "rotate-secret", onclick: () => {
    clear(confirmArea).append(h("div.confirm", { role: "alertdialog", "aria-label": "confirm rotation" },
      h("p", ep.signatureScheme === "github"
        ? "Rotate the signing secret? GitHub's format carries one signature: from now on only the new secret verifies."
        : "Rotate the signing secret? The current secret keeps signing alongside the new one for 24 hours, so receivers can switch over."),
      h("button", { type: "button", id: "confirm-rotate", onclick: async (e) => {
        e.currentTarget.disabled = true;
        try {
          await api("POST", `app/${enc(app.id)}/endpoint/${enc(ep.id)}/secret/rotate`, { body: {} });
          clear(confirmArea);
          notify("Secret rotated. Reveal it to copy the new one.");
        } catch (err) {
          notify(err.message, "error");
        }
      } }, "Rotate secret"),
      h("button.secondary", { type: "button", onclick: () => clear(confirmArea) }, "Cancel")));
  } }, "Rotate secret…");

  const defaultType = (ep.eventTypes && ep.eventTypes[0]) || "herald.test";
  const typeField = h("input", { id: "test-event-type", value: defaultType, list: "test-type-list", "aria-label": "event type" });
  const sendResult = h("div.send-result");
  const send = h("form.row", { id: "send-test", onsubmit: async (e) => {
    e.preventDefault();
    const button = send.querySelector("button");
    button.disabled = true;
    try {
      const m = await api("POST", `app/${enc(app.id)}/endpoint/${enc(ep.id)}/send-example`, { body: { eventType: typeField.value.trim() } });
      clear(sendResult).append(h("p.small", "Test event sent: ", h("a", { href: href("app", app.id, "msg", m.id) }, m.id)));
      notify("Test event sent");
    } catch (err) {
      clear(sendResult).append(h("p.field-error", err.body && Array.isArray(err.body.detail) ? err.body.detail.map((d) => d.msg).join("; ") : err.message));
    } finally {
      button.disabled = false;
    }
  } },
  typeField, h("datalist", { id: "test-type-list" }, types.map((t) => h("option", { value: t }))),
  h("button.secondary", { type: "submit", disabled: ep.disabled }, "Send test event"));

  return card(h("h2", "Actions"),
    h("div.actions-grid",
      h("div", h("h3", "Deliveries"), h("p.small.muted", ep.disabled ? "Disabled: nothing is sent to it." : "Enabled: it receives the events it subscribes to."), toggle),
      h("div", h("h3", "Test event"), h("p.small.muted", "Sends an example message to this endpoint only."), send, sendResult),
      h("div", secretBlock(app, ep), h("div.rotate", rotate, confirmArea))));
}

export async function endpointView(ctx, { app: appKey, ep: epKey, range }) {
  const app = await api("GET", `app/${enc(appKey)}`);
  const ep = await api("GET", `app/${enc(app.id)}/endpoint/${enc(epKey)}`);
  const [attempts, types] = await Promise.all([
    api("GET", `app/${enc(app.id)}/attempt/endpoint/${enc(ep.id)}`, { query: { limit: PAGE_SIZE, with_content: false } }),
    api("GET", "event-type", { query: { limit: 250 } }).catch(() => ({ data: [] })),
  ]);
  ctx.crumbs([["Applications", "#/apps", "admin"], [app.name, href("app", app.id)], [ep.url]]);
  ctx.setApp(app);
  const rows = attempts.data.map((a) =>
    h("tr.clickable", { onclick: (e) => { if (e.target.tagName !== "A") ctx.go(href("app", app.id, "msg", a.msgId)); } },
      h("td", statusBadge(a.status)),
      h("td", httpCode(a.responseStatusCode)),
      h("td.num", `${a.responseDurationMs} ms`),
      h("td", h("a", { href: href("app", app.id, "msg", a.msgId) }, idText(a.msgId))),
      h("td", timeEl(a.timestamp))));
  return h("div",
    pageHead(h("span.url", ep.url),
      h("div.meta", endpointState(ep), ep.description ? h("span", ep.description) : null)),
    await chartCard(app, ep, range || "24h"),
    // A read-only link shows no secret (the API refuses it); a public key it may show.
    ctx.whoami.readOnly
      ? (ep.signatureScheme === "ed25519" ? card(h("h2", "Public key"), secretBlock(app, ep)) : null)
      : actionsCard(ctx, app, ep, types.data.map((t) => t.name)),
    card(h("h2", "Recent attempts"), attempts.data.length
      ? table(["Result", "HTTP", "Duration", "Message", "Time"], rows, ".recent")
      : emptyState("No attempts yet.")),
    card(h("h2", "Details"), detailList([
      ["ID", idText(ep.id)],
      ep.uid ? ["UID", h("code", ep.uid)] : null,
      ["Event types", ep.eventTypes && ep.eventTypes.length ? ep.eventTypes.map((t) => h("code.event", t)) : "all event types"],
      ep.channels ? ["Channels", ep.channels.join(", ")] : null,
      ep.throttleRate ? ["Rate limit", `${ep.throttleRate} per second`] : null,
      ["Signature", h("span", { id: "signature-scheme" }, signatureText(ep))],
      ["Created", timeEl(ep.createdAt)],
      ["Updated", timeEl(ep.updatedAt)],
    ])));
}

// ---------------------------------------------------------------------------------------
// Add an endpoint

const FIELD_OF = { url: "url", description: "description", uid: "uid", eventTypes: "eventTypes", filterTypes: "eventTypes",
  channels: "channels", throttleRate: "throttleRate", rateLimit: "throttleRate", signatureScheme: "signatureScheme" };

export async function newEndpointView(ctx, { app: appKey }) {
  const app = await api("GET", `app/${enc(appKey)}`);
  const types = await api("GET", "event-type", { query: { limit: 250 } }).catch(() => ({ data: [] }));
  ctx.crumbs([["Applications", "#/apps", "admin"], [app.name, href("app", app.id)], ["New endpoint"]]);
  ctx.setApp(app);
  const errors = {};
  const field = (name, label, input, hint) => {
    errors[name] = h("p.field-error", { id: `error-${name}`, role: "alert" });
    input.id = `field-${name}`;
    input.name = name;
    input.setAttribute("aria-describedby", `error-${name}`);
    return h("div.field", h("label", { for: input.id }, label), input, hint ? h("p.hint", hint) : null, errors[name]);
  };
  const url = h("input", { type: "text", placeholder: "https://example.com/webhooks", autocomplete: "off" });
  const description = h("input", { type: "text" });
  const uid = h("input", { type: "text", autocomplete: "off" });
  const rate = h("input", { type: "number", min: "1" });
  const scheme = h("select", Object.entries(SCHEMES).map(([value, s]) =>
    h("option", { value }, `${s.label} (${s.header})`)));
  const checks = types.data.map((t) => h("label.check", h("input", { type: "checkbox", value: t.name }), " ", t.name));
  const otherTypes = h("input", { type: "text", placeholder: "user.created, invoice.paid" });
  const general = h("div.form-error", { role: "alert", id: "form-error" });
  const submit = h("button", { type: "submit" }, "Create endpoint");
  const form = h("form.endpoint-form", {
    novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      for (const el of Object.values(errors)) el.textContent = "";
      for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
      clear(general);
      const eventTypes = [...checks.map((c) => c.querySelector("input")).filter((c) => c.checked).map((c) => c.value),
        ...otherTypes.value.split(",").map((s) => s.trim()).filter(Boolean)];
      const body = { url: url.value.trim() };
      if (description.value.trim()) body.description = description.value.trim();
      if (uid.value.trim()) body.uid = uid.value.trim();
      if (eventTypes.length) body.eventTypes = eventTypes;
      if (rate.value.trim()) body.throttleRate = Number(rate.value);
      if (scheme.value !== "standard") body.signatureScheme = scheme.value;
      submit.disabled = true;
      try {
        const ep = await api("POST", `app/${enc(app.id)}/endpoint`, { body });
        notify("Endpoint created");
        ctx.go(href("app", app.id, "endpoint", ep.id));
      } catch (err) {
        submit.disabled = false;
        if (err.status === 422 && err.body && Array.isArray(err.body.detail)) {
          for (const d of err.body.detail) {
            const name = Array.isArray(d.loc) && d.loc[0] === "body" ? FIELD_OF[d.loc[1]] : null;
            if (name && errors[name]) {
              errors[name].textContent = d.msg;
              const input = form.querySelector(`[name="${name}"]`);
              if (input) input.setAttribute("aria-invalid", "true");
            } else {
              general.append(h("p", `${(d.loc || []).join(".")}: ${d.msg}`));
            }
          }
        } else {
          general.append(h("p", err.message));
        }
      }
    },
  },
  field("url", "URL", url, "Where herald POSTs the webhooks (http:// or https://)."),
  field("description", "Description (optional)", description),
  h("fieldset.field", h("legend", "Event types"),
    checks.length ? h("div.checks", checks) : null,
    field("eventTypes", checks.length ? "Other event types (optional)" : "Event types (optional)", otherTypes,
      "Comma-separated. None selected: the endpoint receives every event type.")),
  field("uid", "UID (optional)", uid, "Your own identifier for this endpoint."),
  field("throttleRate", "Rate limit (optional)", rate, "Most deliveries per second."),
  field("signatureScheme", "Signature", scheme,
    "How deliveries are signed: the format the receiver already verifies. Standard Webhooks unless it expects another."),
  general,
  h("div.row", submit, h("a.button.secondary", { href: href("app", app.id) }, "Cancel")));
  return h("div", pageHead("Add an endpoint", h("p.muted", `For ${app.name}`)), card(null, form));
}
