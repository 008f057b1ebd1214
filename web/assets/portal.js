// The portal's entry: who is visiting (a token from a customer link or the sign-in form),
// and which page to show (the address's #/... part).
import { api, onUnauthorized, session } from "./api.js";
import { clear, errorPanel, h, loading, timeZone } from "./dom.js";
import { appView, appsView, endpointView, href, messageView, newEndpointView, signInView } from "./views.js";

const view = document.getElementById("view");
const crumbs = document.getElementById("crumbs");
const who = document.getElementById("who");
const signOut = document.getElementById("sign-out");
document.getElementById("tz").textContent = `Times in ${timeZone}`;

let whoami = null; // {appId, readOnly, expiresAt} of the current token
let renderSeq = 0;

const ROUTES = [
  [/^\/apps$/, [], appsView, { adminOnly: true }],
  [/^\/app\/([^/]+)$/, ["app"], appView],
  [/^\/app\/([^/]+)\/endpoints\/new$/, ["app"], newEndpointView, { writes: true }],
  [/^\/app\/([^/]+)\/endpoint\/([^/]+)$/, ["app", "ep"], endpointView],
  [/^\/app\/([^/]+)\/msg\/([^/]+)$/, ["app", "msg"], messageView],
];

function parseHash() {
  const raw = location.hash.replace(/^#/, "");
  const [path, q = ""] = raw.split("?");
  const params = Object.fromEntries(new URLSearchParams(q));
  return { path: path || "/", params };
}

function home() {
  return whoami && whoami.appId ? href("app", whoami.appId) : "#/apps";
}

function go(target) {
  if (location.hash === target) render();
  else location.hash = target;
}

function setCrumbs(items) {
  clear(crumbs);
  const shown = items.filter(([, , only]) => !(only === "admin" && whoami.appId));
  shown.forEach(([text, link], i) => {
    if (i > 0) crumbs.append(h("span.sep", { "aria-hidden": "true" }, "›"));
    crumbs.append(link && i < shown.length - 1 ? h("a", { href: link }, text) : h("span.current", text));
  });
}

function showSignIn(message) {
  whoami = null;
  clear(crumbs);
  clear(who);
  signOut.hidden = true;
  document.body.classList.add("signed-out");
  clear(view).append(signInView({
    message,
    onToken: async (token) => {
      const me = await api("GET", "auth/whoami", { token });
      session.start(token, "sign-in");
      whoami = me;
      history.replaceState(null, "", location.pathname + location.search + home());
      start();
    },
  }));
}

function showSignedOut(text) {
  whoami = null;
  clear(crumbs);
  clear(who);
  signOut.hidden = true;
  clear(view).append(h("section.card.signed-out-card", h("h1", "Signed out"), h("p", text)));
}

async function render() {
  const seq = ++renderSeq;
  if (!whoami) return;
  const { path, params } = parseHash();
  if (path === "/" || path === "") return go(home());
  const match = ROUTES.map(([re, names, fn, opts = {}]) => ({ m: re.exec(path), names, fn, opts })).find((r) => r.m);
  clear(view).append(loading());
  let node;
  try {
    if (!match) {
      throw Object.assign(new Error("No such page."), { status: 404 });
    }
    if (match.opts.adminOnly && whoami.appId) return go(home());
    if (match.opts.writes && whoami.readOnly) throw Object.assign(new Error("This link can only view deliveries."), { status: 403 });
    const args = { ...params };
    match.names.forEach((n, i) => (args[n] = decodeURIComponent(match.m[i + 1])));
    node = await match.fn(ctx, args);
  } catch (err) {
    if (err.status === 401) return; // the unauthorized handler has taken over
    node = errorPanel(err);
    setCrumbs([[whoami.appId ? "Back to your application" : "Applications", home()], ["Error"]]);
  }
  if (seq !== renderSeq) return; // a newer navigation won
  clear(view).append(node);
  view.focus({ preventScroll: true });
}

const ctx = {
  get whoami() {
    return whoami;
  },
  go,
  reload: render,
  crumbs: setCrumbs,
  setApp(app) {
    clear(who).append(h("span.app-name", app.name));
    if (whoami.readOnly) who.append(h("span.tag", "read-only"));
  },
};

onUnauthorized(() => {
  const viaLink = session.via() === "link";
  session.end();
  showSignIn(viaLink ? "This link has expired or was revoked. Ask for a new link." : "Your session has expired. Sign in again.");
});

signOut.addEventListener("click", () => {
  const viaLink = session.via() === "link";
  session.end();
  if (viaLink) showSignedOut("You are signed out. Open your link again to come back.");
  else showSignIn("");
});

async function start() {
  document.body.classList.remove("signed-out");
  const token = session.token();
  if (!token) return showSignIn("");
  try {
    whoami = await api("GET", "auth/whoami", { token });
  } catch (err) {
    if (err.status === 401) {
      const viaLink = session.via() === "link";
      session.end();
      return showSignIn(viaLink ? "This link has expired or is not valid. Ask for a new link." : "That token is not valid or has expired.");
    }
    clear(view).append(errorPanel(err));
    return;
  }
  signOut.hidden = false;
  render();
}

// A customer link carries its token in the fragment (#key=...), which never reaches a server.
// Keep it for this tab and take it out of the address bar and history.
const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
if (fragment.has("key")) {
  session.start(fragment.get("key"), "link");
  history.replaceState(null, "", location.pathname + location.search + "#/");
}
window.addEventListener("hashchange", render);
start();
