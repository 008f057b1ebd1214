// Building the page. Text from the API only ever goes through textContent or attributes,
// never through HTML parsing: a payload like <img onerror=...> shows as text.

// h("a.link", {href, onclick}, "text", child, [more]) → an element. Attributes: "text",
// "class", "dataset" (object), "on<event>" (functions); any other goes through setAttribute.
// Children: strings and numbers become text nodes; null, undefined and false are skipped.
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") el.textContent = String(v);
    else if (k === "class") el.className = [el.className, v].filter(Boolean).join(" ");
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
export const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";

// <time> in the viewer's time zone; the exact UTC time on hover.
export function timeEl(iso) {
  if (!iso) return h("span.muted", "—");
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h("span", iso);
  return h("time", { datetime: iso, title: `${iso} (UTC)` }, dateTime.format(d));
}

// "3 min ago" for a recent time; the full date otherwise.
export function relativeTime(iso) {
  const ms = Date.now() - new Date(iso).getTime();
  if (!(ms >= 0)) return "";
  const s = Math.round(ms / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

// Delivery states (Svix's numbers): 0 success, 1 pending, 2 fail, 3 sending.
const STATES = {
  0: { cls: "ok", icon: "✓", text: "Succeeded" },
  1: { cls: "wait", icon: "◷", text: "Pending" },
  2: { cls: "bad", icon: "✕", text: "Failed" },
  3: { cls: "wait", icon: "↻", text: "Sending" },
};

// A badge with an icon and a word, so the state never depends on colour alone.
export function badge(cls, icon, text, title) {
  return h(`span.badge.${cls}`, { title }, h("span", { "aria-hidden": "true" }, icon), " ", text);
}

export function statusBadge(status, texts = {}) {
  if (status === null || status === undefined) return badge("none", "–", texts.none || "No endpoints");
  const s = STATES[status] || { cls: "none", icon: "?", text: `status ${status}` };
  return badge(s.cls, s.icon, texts[status] || s.text);
}

export function httpCode(code) {
  if (!code) return h("span.code-pill.bad", { title: "no HTTP response (timeout or network error)" }, "no response");
  const cls = code >= 200 && code < 300 ? "ok" : "bad";
  return h(`span.code-pill.${cls}`, String(code));
}

// Text shown as pretty-printed JSON when it parses as JSON, else as it is; scrolls when long.
export function codeBlock(text, label) {
  let shown = text ?? "";
  if (typeof text !== "string") shown = JSON.stringify(text, null, 2);
  else {
    try {
      const v = JSON.parse(text);
      if (v !== null && typeof v === "object") shown = JSON.stringify(v, null, 2);
    } catch {
      /* not JSON: as it is */
    }
  }
  if (shown === "") return h("p.muted", "(empty)");
  return h("pre.code", { tabindex: "0", "aria-label": label }, shown);
}

export function loading(what = "Loading") {
  return h("p.loading", { role: "status" }, `${what}…`);
}

export function emptyState(text, hint) {
  return h("div.empty", h("p", text), hint ? h("p.muted", hint) : null);
}

// A page that failed: what happened, in words.
export function errorPanel(err) {
  let title = "Something went wrong";
  let text = err && err.message ? err.message : String(err);
  if (err && err.status === 404) {
    title = "Not found";
    text = "This page does not exist, or your access does not include it.";
  } else if (err && err.status === 403) {
    title = "Not allowed";
  } else if (err && err.status === 0) {
    title = "herald could not be reached";
    text = "Check your connection and reload the page.";
  }
  return h("section.card.error-panel", { role: "alert" }, h("h1", title), h("p", text));
}

export function idText(id) {
  return h("code.id", { title: id }, id);
}

// A transient message at the top of the page.
export function notify(text, kind = "info") {
  const area = document.getElementById("notice");
  if (!area) return;
  clear(area);
  const note = h(`div.notice.${kind}`, { role: kind === "error" ? "alert" : "status" }, text);
  area.append(note);
  setTimeout(() => note.remove(), 6000);
}
