// The delivery portal in a real browser: Debian's headless Chromium driven by playwright-core,
// against a real herald process and a real loopback receiver (tests/conformance/harness.mjs).
// Screenshots of each main view (1366×768) go to tests/artifacts/portal/.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { eventually, rawRequest, startHerald, startReceiver, uniq } from "../conformance/harness.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = path.resolve(HERE, "../artifacts/portal");
const CHROMIUM = process.env.HERALD_CHROMIUM || "/usr/bin/chromium";
const VIEWPORT = { width: 1366, height: 768 };
const WAIT = 10_000; // longest wait for anything to show up

const CUSTOMER_SECRET_HEADER = "Bearer cust-header-value-never-shown";
const XSS = "<img src=x onerror=window.__xss=1>";

let herald;
let receiver;
let browser;
// App A is the customer's; app B belongs to someone else and must never show.
const A = {};
const B = {};

async function call(method, p, body, token) {
  const res = await rawRequest(herald, method, p, { body, token });
  assert.ok(res.status >= 200 && res.status < 300, `${method} ${p}: ${res.status} ${res.text}`);
  return res.json;
}

async function attemptsOf(app, msg) {
  return (await call("GET", `/api/v1/app/${app}/attempt/msg/${msg}?limit=250`)).data;
}

async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

// A fresh browser context (no storage shared with other tests) at the laptop size.
// `seen` collects every API response body the page received.
async function newPage() {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  const seen = [];
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  page.on("response", async (res) => {
    if (!res.url().includes("/api/v1/")) return;
    try {
      seen.push(await res.text());
    } catch {
      /* a body already gone (navigation) */
    }
  });
  return { context, page, seen, errors };
}

// The strings of app B that the customer of app A must never be shown or sent.
function assertNoB(text, where) {
  for (const s of [B.name, B.id, B.uid, B.msgId, B.endpointUrl, B.marker]) {
    assert.ok(!text.includes(s), `${where}: app B's "${s}" leaked`);
  }
}

before(async () => {
  herald = await startHerald({ retrySchedule: "100ms,200ms" });
  receiver = await startReceiver();
  // The customer's endpoint fails first (500, with markup in its body), then succeeds.
  receiver.respond("/acme", [
    { status: 500, body: { error: "temporarily down", detail: XSS } },
    { status: 200, body: { ok: true, received: "thanks" } },
  ]);
  receiver.respond("/globex-private-hook", 204);

  A.name = "Acme Portal Customer";
  A.uid = uniq("acme");
  B.name = "Globex Hidden Tenant";
  B.uid = uniq("globex");
  A.id = (await call("POST", "/api/v1/app", { name: A.name, uid: A.uid })).id;
  B.id = (await call("POST", "/api/v1/app", { name: B.name, uid: B.uid })).id;
  await call("POST", "/api/v1/event-type", { name: "invoice.paid", description: "an invoice was paid" });

  A.endpointUrl = receiver.url("/acme");
  A.endpointId = (
    await call("POST", `/api/v1/app/${A.id}/endpoint`, {
      url: A.endpointUrl,
      description: "Acme production receiver",
      eventTypes: ["invoice.paid"],
      headers: { Authorization: CUSTOMER_SECRET_HEADER, "X-Team": "billing" },
    })
  ).id;
  B.endpointUrl = receiver.url("/globex-private-hook");
  await call("POST", `/api/v1/app/${B.id}/endpoint`, { url: B.endpointUrl });

  A.marker = "ACME-PAYLOAD-MARKER";
  B.marker = "GLOBEX-PAYLOAD-MARKER";
  A.msgId = (
    await call("POST", `/api/v1/app/${A.id}/msg`, {
      eventType: "invoice.paid",
      payload: { marker: A.marker, invoice: "in_123", amount: 4200, note: XSS },
    })
  ).id;
  B.msgId = (
    await call("POST", `/api/v1/app/${B.id}/msg`, { eventType: "invoice.paid", payload: { marker: B.marker } })
  ).id;
  await eventually(async () => (await attemptsOf(A.id, A.msgId)).length >= 2, {
    timeoutMs: WAIT,
    message: "a failed then a successful attempt for app A's message",
  });
  await eventually(async () => (await attemptsOf(B.id, B.msgId)).length >= 1, {
    timeoutMs: WAIT,
    message: "app B's attempt",
  });

  // launch() gives the browser a fresh, temporary profile of its own.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  await receiver?.close();
  await herald?.stop();
});

describe("operator", () => {
  test("signs in with the admin token and sees every application", async () => {
    const { context, page, errors } = await newPage();
    await page.goto(`${herald.url}/portal`);
    await page.locator("#token").waitFor({ timeout: WAIT });
    await shot(page, "sign-in");

    await page.fill("#token", "not-the-token-at-all");
    await page.click("form.signin button[type=submit]");
    await page.locator("#signin-error", { hasText: "not valid" }).waitFor({ timeout: WAIT });

    await page.fill("#token", herald.token);
    await page.click("form.signin button[type=submit]");
    await page.locator("h1", { hasText: "Applications" }).waitFor({ timeout: WAIT });
    await page.locator("td a", { hasText: A.name }).waitFor();
    await page.locator("td a", { hasText: B.name }).waitFor();
    assert.ok(!page.url().includes(herald.token), "the token is not in the address");
    await shot(page, "apps");

    // The operator can hand out a customer link from the app page.
    await page.click(`td a:text("${A.name}")`);
    await page.locator("#customer-link").click();
    const link = await page.locator("input.link").inputValue();
    assert.match(link, /\/portal\/#key=ak_[0-9a-f]+$/);

    await page.click("#sign-out");
    await page.locator("#token").waitFor({ timeout: WAIT });
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, "sign-out forgets the token");
    assert.deepEqual(errors, []);
    await context.close();
  });
});

describe("customer link", () => {
  let customer;
  let access;

  before(async () => {
    access = await call("POST", `/api/v1/auth/app-portal-access/${A.uid}`, {});
    customer = await newPage();
  });
  after(async () => {
    await customer.context.close();
  });

  test("opens app A with no sign-in and takes the token out of the address", async () => {
    const { page } = customer;
    assert.match(access.url, new RegExp(`^${herald.url}/portal/#key=`));
    await page.goto(access.url);
    await page.locator("h1", { hasText: A.name }).waitFor({ timeout: WAIT });
    assert.equal(await page.locator("#token").count(), 0, "no sign-in form");
    assert.ok(!page.url().includes("key="), `the token left the address bar: ${page.url()}`);
    assert.ok(!page.url().includes(access.token));
    // Endpoint health: URL, success rate, last attempt.
    const row = page.locator("table tr", { hasText: A.endpointUrl });
    await row.waitFor();
    await row.locator(".rate-text").waitFor();
    assert.match(await row.innerText(), /Enabled/);
    assert.match(await row.locator(".rate-text").innerText(), /^\d+(\.\d)?%$/);
    // Messages, newest first, with their overall state.
    const msgRow = page.locator("table tr", { hasText: A.msgId });
    await msgRow.waitFor();
    assert.match(await msgRow.innerText(), /Succeeded/);
    assert.match(await msgRow.innerText(), /invoice\.paid/);
    // Times are <time> elements with the exact time on hover.
    const t = msgRow.locator("time");
    assert.match(await t.getAttribute("datetime"), /^\d{4}-\d\d-\d\dT/);
    assert.match(await t.getAttribute("title"), /UTC/);
    await shot(page, "app");
  });

  test("filters messages by status", async () => {
    const { page } = customer;
    await page.selectOption("#filter-status", "2");
    await page.click("form.filters button[type=submit]");
    await page.locator(".empty", { hasText: "No messages match" }).waitFor({ timeout: WAIT });
    await page.selectOption("#filter-status", "0");
    await page.click("form.filters button[type=submit]");
    await page.locator("table tr", { hasText: A.msgId }).waitFor({ timeout: WAIT });
    await page.locator("a.button", { hasText: "Clear" }).click();
    await page.locator("#filter-status").waitFor();
  });

  test("shows the message, its attempts, response bodies and the headers sent", async () => {
    const { page } = customer;
    await page.locator(`a[href$="/msg/${A.msgId}"]`).first().click();
    const payload = page.locator("pre.code[aria-label=payload]");
    await payload.waitFor({ timeout: WAIT });
    assert.match(await payload.innerText(), new RegExp(A.marker));
    assert.match(await payload.innerText(), /\n  "amount": 4200/, "the payload is pretty-printed");

    const delivery = page.locator(`section.delivery[data-endpoint-id="${A.endpointId}"]`);
    await delivery.waitFor();
    const attempts = delivery.locator("details.attempt");
    assert.equal(await attempts.count(), 2);
    const text = await delivery.innerText();
    assert.match(text, /\b500\b/);
    assert.match(text, /\b200\b/);
    assert.match(text, /\d+ ms/);
    assert.match(text, /Failed/);
    assert.match(text, /Succeeded/);
    // Open every attempt: response bodies (pretty-printed JSON) and request headers.
    for (const d of await attempts.all()) {
      if ((await d.getAttribute("open")) === null) await d.locator("summary").click();
    }
    const full = await delivery.innerText();
    assert.match(full, /"received": "thanks"/);
    assert.match(full, /temporarily down/);
    assert.match(full, /webhook-signature\s+v1,[A-Za-z0-9+/=]+/, "the signature is shown");
    assert.match(full, /webhook-id\s+msg_/);
    assert.match(full, /x-team\s+billing|X-Team\s+billing/);
    assert.match(full, /Authorization\s+\*{8}/, "a sensitive custom header is masked");
    assert.ok(!(await page.content()).includes("cust-header-value-never-shown"), "secret header value shown");
    await shot(page, "message");
  });

  test("renders markup from payloads and responses as text", async () => {
    const { page } = customer;
    const body = await page.locator("body").innerText();
    assert.ok(body.includes(XSS), "the payload's markup shows as text");
    assert.equal(await page.locator("img").count(), 0, "no <img> was created from API data");
    assert.equal(await page.evaluate(() => window.__xss), undefined, "no injected script ran");
  });

  test("resend makes a new attempt that appears on the page", async () => {
    const { page } = customer;
    const delivery = page.locator(`section.delivery[data-endpoint-id="${A.endpointId}"]`);
    const before = await delivery.locator("details.attempt").count();
    const requestsBefore = receiver.requests("/acme").length;
    await delivery.locator("button.resend").click();
    await eventually(async () => (await page.locator(`section.delivery[data-endpoint-id="${A.endpointId}"] details.attempt`).count()) === before + 1, {
      timeoutMs: WAIT,
      message: `a new attempt in the page (had ${before})`,
    });
    assert.equal(receiver.requests("/acme").length, requestsBefore + 1, "the receiver got the resend");
    assert.match(await page.locator(`section.delivery[data-endpoint-id="${A.endpointId}"] details.attempt`).first().innerText(), /manual/i);
  });

  test("adds an endpoint, with the API's validation errors shown on the form", async () => {
    const { page } = customer;
    await page.goto(`${herald.url}/portal/#/app/${A.id}`);
    await page.locator("a.button", { hasText: "Add endpoint" }).click();
    await page.locator("#field-url").waitFor({ timeout: WAIT });
    await page.fill("#field-url", "ftp://files.example.com/hook");
    await page.fill("#field-uid", "bad uid with spaces");
    await page.click("form.endpoint-form button[type=submit]");
    await page.locator("#error-url", { hasText: "http:// or https://" }).waitFor({ timeout: WAIT });
    await page.locator("#error-uid").waitFor();
    assert.equal(await page.locator("#field-url").getAttribute("aria-invalid"), "true");
    await shot(page, "new-endpoint-errors");

    const url = receiver.url("/acme-second");
    receiver.respond("/acme-second", 204);
    await page.fill("#field-url", url);
    await page.fill("#field-uid", "acme-second");
    await page.fill("#field-description", "second receiver");
    await page.check('input[type=checkbox][value="invoice.paid"]');
    await page.click("form.endpoint-form button[type=submit]");
    await page.locator("h1", { hasText: url }).waitFor({ timeout: WAIT });
    const ep = await call("GET", `/api/v1/app/${A.id}/endpoint/acme-second`);
    assert.equal(ep.url, url);
    assert.deepEqual(ep.eventTypes, ["invoice.paid"]);
    assert.equal(ep.signatureScheme, "standard", "the form's default scheme");
    assert.match(await page.locator("#signature-scheme").innerText(), /Standard Webhooks, in webhook-signature/);
  });

  test("adds an endpoint that signs with Ed25519 and shows its public key", async () => {
    const { page } = customer;
    await page.goto(`${herald.url}/portal/#/app/${A.id}/endpoints/new`);
    await page.locator("#field-signatureScheme").waitFor({ timeout: WAIT });
    const offered = await page.locator("#field-signatureScheme option").evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(offered, ["standard", "stripe", "github", "ed25519"]);
    const url = receiver.url("/acme-ed25519");
    receiver.respond("/acme-ed25519", 204);
    await page.fill("#field-url", url);
    await page.fill("#field-uid", "acme-ed25519");
    await page.check('input[type=checkbox][value="invoice.paid"]');
    await page.selectOption("#field-signatureScheme", "ed25519");
    await page.click("form.endpoint-form button[type=submit]");
    await page.locator("h1", { hasText: url }).waitFor({ timeout: WAIT });
    const ep = await call("GET", `/api/v1/app/${A.id}/endpoint/acme-ed25519`);
    assert.equal(ep.signatureScheme, "ed25519");
    assert.match(await page.locator("#signature-scheme").innerText(), /Ed25519/);

    await page.locator("h3", { hasText: "Public key" }).waitFor({ timeout: WAIT });
    await page.click("#reveal-secret");
    const shown = await page.locator("code.secret").innerText();
    assert.match(shown, /^whpk_/);
    assert.equal(shown, (await call("GET", `/api/v1/app/${A.id}/endpoint/${ep.id}/secret`)).key);
    await shot(page, "endpoint-ed25519");
  });

  test("the endpoint page: chart, disable and enable, test event, secret", async () => {
    const { page } = customer;
    await page.goto(`${herald.url}/portal/#/app/${A.id}/endpoint/${A.endpointId}`);
    await page.locator("h1", { hasText: A.endpointUrl }).waitFor({ timeout: WAIT });
    await page.locator("svg.chart rect.bar-success").first().waitFor({ timeout: WAIT });
    assert.ok((await page.locator("svg.chart rect.bar-fail").count()) >= 1, "failures are drawn");
    assert.match(await page.locator(".chart-summary").innerText(), /\d+ succeeded.*\d+ failed/s);
    await page.locator("button.range[data-range='7d']").click();
    await page.locator("button.range[data-range='7d'][aria-pressed=true]").waitFor();
    await page.locator("svg.chart rect.bar-success").first().waitFor({ timeout: WAIT });
    await page.locator("button.range[data-range='24h']").click();
    await page.locator("svg.chart rect.bar-success").first().waitFor({ timeout: WAIT });
    await shot(page, "endpoint");

    await page.click("#toggle-endpoint");
    await page.locator("#toggle-endpoint", { hasText: "Enable endpoint" }).waitFor({ timeout: WAIT });
    await page.locator(".page-head .badge", { hasText: "Disabled" }).waitFor();
    assert.equal((await call("GET", `/api/v1/app/${A.id}/endpoint/${A.endpointId}`)).disabled, true);
    await page.click("#toggle-endpoint");
    await page.locator("#toggle-endpoint", { hasText: "Disable endpoint" }).waitFor({ timeout: WAIT });
    assert.equal((await call("GET", `/api/v1/app/${A.id}/endpoint/${A.endpointId}`)).disabled, false);

    const before = receiver.requests("/acme").length;
    await page.fill("#test-event-type", "invoice.paid");
    await page.click("#send-test button[type=submit]");
    await page.locator(".send-result a", { hasText: "msg_" }).waitFor({ timeout: WAIT });
    await receiver.waitFor("/acme", before + 1, WAIT);
    const sent = receiver.requests("/acme")[before];
    assert.equal(JSON.parse(sent.body).test, true, "the default test payload was delivered");

    await page.click("#reveal-secret");
    const secret = await page.locator("code.secret").innerText();
    const apiSecret = await call("GET", `/api/v1/app/${A.id}/endpoint/${A.endpointId}/secret`);
    assert.equal(secret, apiSecret.key);
    await page.click("#rotate-secret");
    await page.click("#confirm-rotate");
    await page.locator(".notice", { hasText: "Secret rotated" }).waitFor({ timeout: WAIT });
    const rotated = await call("GET", `/api/v1/app/${A.id}/endpoint/${A.endpointId}/secret`);
    assert.notEqual(rotated.key, apiSecret.key, "the secret was rotated");
  });

  test("app B's data never reaches the customer, even by typing its address", async () => {
    const { page, seen } = customer;
    await page.goto(`${herald.url}/portal/#/app/${B.id}`);
    await page.locator(".error-panel h1", { hasText: "Not found" }).waitFor({ timeout: WAIT });
    assertNoB(await page.content(), "the page for app B");
    await shot(page, "not-found");
    await page.goto(`${herald.url}/portal/#/app/${B.id}/msg/${B.msgId}`);
    await page.locator(".error-panel h1", { hasText: "Not found" }).waitFor({ timeout: WAIT });
    assertNoB(await page.content(), "app B's message page");
    // The apps list is not for customers: they land back on their own app.
    await page.goto(`${herald.url}/portal/#/apps`);
    await page.locator("h1", { hasText: A.name }).waitFor({ timeout: WAIT });
    assertNoB(await page.content(), "the apps route");
    assert.ok(seen.length > 10, `the customer's API responses were recorded (${seen.length})`);
    for (const body of seen) assertNoB(body, "an API response to the customer");
  });

  test("signing out forgets the link's token", async () => {
    const { page } = customer;
    await page.click("#sign-out");
    await page.locator(".signed-out-card").waitFor({ timeout: WAIT });
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    await page.reload();
    await page.locator("#token").waitFor({ timeout: WAIT });
  });

  test("no page of the customer's visit threw a JavaScript error", () => {
    // Every page above, the refused ones for app B included, ran in this one browser page.
    assert.deepEqual(customer.errors.map(String), []);
  });
});

describe("read-only and broken links", () => {
  test("a read-only link shows deliveries without any action", async () => {
    const access = await call("POST", `/api/v1/auth/app-portal-access/${A.id}`, { readOnly: true });
    const { context, page, errors } = await newPage();
    await page.goto(access.url);
    await page.locator("h1", { hasText: A.name }).waitFor({ timeout: WAIT });
    await page.locator(".who .tag", { hasText: "read-only" }).waitFor();
    assert.equal(await page.locator("a.button", { hasText: "Add endpoint" }).count(), 0);
    await page.locator(`a[href$="/msg/${A.msgId}"]`).first().click();
    await page.locator("section.delivery").first().waitFor({ timeout: WAIT });
    assert.equal(await page.locator("button.resend").count(), 0, "no resend for a read-only link");

    // The endpoint page: no secret to reveal, nothing to act on; an Ed25519 endpoint's public
    // key it shows.
    await page.goto(`${herald.url}/portal/#/app/${A.id}/endpoint/${A.endpointId}`);
    await page.locator("h1", { hasText: A.endpointUrl }).waitFor({ timeout: WAIT });
    await page.locator("#signature-scheme").waitFor({ timeout: WAIT });
    for (const id of ["#reveal-secret", "#rotate-secret", "#toggle-endpoint", "#send-test"]) {
      assert.equal(await page.locator(id).count(), 0, `${id} on a read-only link`);
    }
    const readOnly = await rawRequest(herald, "GET", `/api/v1/app/${A.id}/endpoint/${A.endpointId}/secret`, {
      token: access.token,
    });
    assert.equal(readOnly.status, 403, `a read-only token reading a secret: ${readOnly.text}`);
    await page.goto(`${herald.url}/portal/#/app/${A.id}/endpoint/acme-ed25519`);
    await page.locator("h2", { hasText: "Public key" }).waitFor({ timeout: WAIT });
    await page.click("#reveal-secret");
    assert.match(await page.locator("code.secret").innerText(), /^whpk_/);
    assert.deepEqual(errors.map(String), [], "JavaScript errors on the read-only link's pages");
    await context.close();
  });

  test("an invalid link says so", async () => {
    const { context, page, errors } = await newPage();
    await page.goto(`${herald.url}/portal/#key=ak_this_is_not_a_token`);
    await page.locator("#signin-error", { hasText: "expired or is not valid" }).waitFor({ timeout: WAIT });
    assert.ok(!page.url().includes("ak_this_is_not_a_token"));
    assert.deepEqual(errors.map(String), []);
    await context.close();
  });
});
