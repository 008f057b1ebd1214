// Error contract: 401, 404, 409, 413, 422 and malformed input; every rejection changes nothing.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";

import {
  Svix,
  instrumentSvix,
  assertJsonResponse,
  assertValidationBody,
  expectApiError,
  rawRequest,
  startHerald,
  startReceiver,
  uniq,
} from "./harness.mjs";

let h;
let rx;
let svix;
let app; // an app with one endpoint and one message, used to check "nothing changed"
let ep;
let path;

before(async () => {
  h = await startHerald();
  svix = h.svix;
  rx = await startReceiver();
  app = await svix.application.create({ name: "errors", uid: uniq("errapp") });
  path = `/${uniq("err")}`;
  ep = await svix.endpoint.create(app.id, { url: rx.url(path) });
  await svix.message.create(app.id, { eventType: "user.created", payload: { baseline: true } });
  await rx.waitFor(path, 1);
});

after(async () => {
  await h?.stop();
  await rx?.close();
});

/** Snapshot of everything a rejected request could have touched. */
async function snapshot() {
  const apps = await svix.application.list({ limit: 250 });
  const eps = await svix.endpoint.list(app.id, { limit: 250 });
  const msgs = await svix.message.list(app.id, { limit: 250 });
  const epGot = await svix.endpoint.get(app.id, ep.id);
  // Deliveries by state: a delivery a rejected request made shows here at once.
  const stats = await svix.endpoint.getStats(app.id, ep.id);
  return {
    apps: apps.data.map((a) => `${a.id}:${a.name}:${a.uid}`).sort(),
    endpoints: eps.data.map((e) => `${e.id}:${e.url}:${e.disabled}`).sort(),
    messages: msgs.data.map((m) => m.id),
    endpoint: { url: epGot.url, disabled: epGot.disabled, description: epGot.description },
    deliveries: rx.requests(path).length,
    stats: [stats.success, stats.pending, stats.sending, stats.fail],
  };
}

async function assertUnchanged(before, what) {
  // A message or delivery it made is committed before any answer, so it is listed by now.
  const now = await snapshot();
  assert.deepEqual(now, before, `${what}: state changed after a rejected request`);
}

describe("authentication", () => {
  test("bad token → 401 authentication_failed", async () => {
    const bad = instrumentSvix(new Svix("not-the-right-token-0123456789abcdefghij", { serverUrl: h.url }));
    await expectApiError(bad.application.list(), 401, "authentication_failed", "list apps with a bad token");
    await expectApiError(bad.application.get(app.id), 401, "authentication_failed", "get app with a bad token");
  });

  test("a rejected token changes nothing", async () => {
    const before = await snapshot();
    const bad = instrumentSvix(new Svix("wrong-token", { serverUrl: h.url }));
    await expectApiError(
      bad.message.create(app.id, { eventType: "user.created", payload: { evil: 1 } }),
      401,
      "authentication_failed",
      "message create with a bad token",
    );
    await expectApiError(bad.application.create({ name: "evil" }), 401, "authentication_failed", "app create");
    await expectApiError(bad.endpoint.delete(app.id, ep.id), 401, "authentication_failed", "endpoint delete");
    await assertUnchanged(before, "bad token");
  });

  test("missing Authorization → 401 JSON", async () => {
    const res = await rawRequest(h, "GET", "/api/v1/app", { token: null });
    assert.equal(res.status, 401, `no Authorization header: expected 401, got ${res.status}`);
    assertJsonResponse(res, "401 without token");
    assert.equal(res.json.code, "authentication_failed");
  });

  test("non-Bearer scheme → 401", async () => {
    const res = await rawRequest(h, "GET", "/api/v1/app", {
      token: null,
      headers: { authorization: `Basic ${Buffer.from(`x:${h.token}`).toString("base64")}` },
    });
    assert.equal(res.status, 401, `Basic auth: expected 401, got ${res.status}`);
  });
});

describe("not found", () => {
  test("unknown app → 404 not_found on every app-scoped route", async () => {
    const nope = "app_doesnotexist000000000000";
    await expectApiError(svix.application.get(nope), 404, "not_found", "get unknown app");
    await expectApiError(svix.endpoint.list(nope), 404, "not_found", "list endpoints of unknown app");
    await expectApiError(
      svix.endpoint.create(nope, { url: rx.url("/never") }),
      404,
      "not_found",
      "create endpoint in unknown app",
    );
    await expectApiError(
      svix.message.create(nope, { eventType: "user.created", payload: {} }),
      404,
      "not_found",
      "create message in unknown app",
    );
    await expectApiError(svix.message.list(nope), 404, "not_found", "list messages of unknown app");
    await expectApiError(svix.application.patch(nope, { name: "x" }), 404, "not_found", "patch unknown app");
  });

  test("unknown message → 404", async () => {
    await expectApiError(svix.message.get(app.id, "msg_doesnotexist"), 404, "not_found", "get unknown message");
  });

  test("unknown route → 404 JSON", async () => {
    const res = await rawRequest(h, "GET", "/api/v1/no-such-route");
    assert.equal(res.status, 404, `unknown route: expected 404, got ${res.status}`);
    assertJsonResponse(res, "unknown route");
  });
});

describe("validation (422)", () => {
  test("message without eventType", async () => {
    const before = await snapshot();
    const err = await expectApiError(
      svix.message.create(app.id, { payload: { a: 1 } }),
      422,
      undefined,
      "message without eventType",
    );
    assertValidationBody(err.body, "message without eventType");
    assert.ok(
      err.body.detail.some((d) => d.loc.includes("eventType")),
      `detail should point at eventType: ${JSON.stringify(err.body)}`,
    );
    await assertUnchanged(before, "message without eventType");
  });

  for (const [label, payload] of [
    ["array", [1, 2, 3]],
    ["string", "just a string"],
    ["number", 42],
    ["null", null],
  ]) {
    test(`message payload that is not an object (${label})`, async () => {
      const before = await snapshot();
      const res = await rawRequest(h, "POST", `/api/v1/app/${app.id}/msg`, {
        body: { eventType: "user.created", payload },
      });
      assert.equal(res.status, 422, `payload ${label}: expected 422, got ${res.status} ${res.text}`);
      assertJsonResponse(res, `payload ${label}`);
      assertValidationBody(res.json, `payload ${label}`);
      await assertUnchanged(before, `payload ${label}`);
    });
  }

  test("message without payload", async () => {
    const before = await snapshot();
    const res = await rawRequest(h, "POST", `/api/v1/app/${app.id}/msg`, { body: { eventType: "user.created" } });
    assert.equal(res.status, 422, `missing payload: expected 422, got ${res.status} ${res.text}`);
    assertValidationBody(res.json, "missing payload");
    await assertUnchanged(before, "missing payload");
  });

  for (const url of ["ftp://x", "not a url", "", "http://"]) {
    test(`endpoint url ${JSON.stringify(url)}`, async () => {
      const before = await snapshot();
      const err = await expectApiError(svix.endpoint.create(app.id, { url }), 422, undefined, `endpoint url ${url}`);
      assertValidationBody(err.body, `endpoint url ${url}`);
      await assertUnchanged(before, `endpoint url ${url}`);
    });
  }

  test("endpoint update to an invalid url is rejected and keeps the old url", async () => {
    const before = await snapshot();
    await expectApiError(svix.endpoint.patch(app.id, ep.id, { url: "ftp://x" }), 422, undefined, "patch url ftp");
    await expectApiError(svix.endpoint.upsert(app.id, ep.id, { url: "not a url" }), 422, undefined, "put bad url");
    await assertUnchanged(before, "invalid endpoint update");
  });

  test("endpoint with a malformed secret", async () => {
    const before = await snapshot();
    await expectApiError(
      svix.endpoint.create(app.id, { url: rx.url("/never"), secret: "not-a-secret" }),
      422,
      undefined,
      "malformed secret",
    );
    await expectApiError(
      svix.endpoint.create(app.id, { url: rx.url("/never"), secret: `whsec_${Buffer.alloc(8).toString("base64")}` }),
      422,
      undefined,
      "too-short secret (8 bytes)",
    );
    await assertUnchanged(before, "malformed secret");
  });

  test("app without name", async () => {
    const before = await snapshot();
    const err = await expectApiError(svix.application.create({ uid: uniq("noname") }), 422, undefined, "app without name");
    assertValidationBody(err.body, "app without name");
    assert.ok(
      err.body.detail.some((d) => d.loc.includes("name")),
      `detail should point at name: ${JSON.stringify(err.body)}`,
    );
    await assertUnchanged(before, "app without name");
  });

  test("wrong JSON types", async () => {
    const before = await snapshot();
    const r1 = await rawRequest(h, "POST", "/api/v1/app", { body: { name: 12 } });
    assert.equal(r1.status, 422, `app name as number: expected 422, got ${r1.status} ${r1.text}`);
    const r2 = await rawRequest(h, "POST", `/api/v1/app/${app.id}/msg`, { body: { eventType: 5, payload: {} } });
    assert.equal(r2.status, 422, `eventType as number: expected 422, got ${r2.status} ${r2.text}`);
    const r3 = await rawRequest(h, "POST", `/api/v1/app/${app.id}/endpoint`, {
      body: { url: rx.url("/never"), eventTypes: "user.created" },
    });
    assert.equal(r3.status, 422, `eventTypes as string: expected 422, got ${r3.status} ${r3.text}`);
    await assertUnchanged(before, "wrong JSON types");
  });

  test("unknown fields are ignored", async () => {
    const res = await rawRequest(h, "POST", "/api/v1/app", {
      body: { name: "extra-fields", uid: uniq("extra"), somethingNew: { nested: true }, another: 1 },
    });
    assert.equal(res.status, 201, `unknown fields must be ignored: got ${res.status} ${res.text}`);
    await svix.application.delete(res.json.id);
  });
});

describe("malformed and oversized bodies", () => {
  test("malformed JSON → 400/422 JSON, nothing created", async () => {
    const before = await snapshot();
    for (const [route, body] of [
      ["/api/v1/app", '{"name": "broken",'],
      [`/api/v1/app/${app.id}/msg`, '{"eventType":"user.created","payload":{"a":1}'],
      [`/api/v1/app/${app.id}/endpoint`, "not json at all"],
    ]) {
      const res = await rawRequest(h, "POST", route, { body });
      assert.ok(
        res.status === 400 || res.status === 422,
        `malformed JSON to ${route}: expected 400 or 422, got ${res.status} ${res.text}`,
      );
      assertJsonResponse(res, `malformed JSON to ${route}`);
    }
    await assertUnchanged(before, "malformed JSON");
  });

  test("body over 1 MiB → 413 JSON, nothing created", async () => {
    const before = await snapshot();
    const big = JSON.stringify({ eventType: "user.created", payload: { blob: "x".repeat(1024 * 1024 + 1024) } });
    const res = await rawRequest(h, "POST", `/api/v1/app/${app.id}/msg`, { body: big });
    assert.equal(res.status, 413, `oversized body: expected 413, got ${res.status} ${res.text.slice(0, 300)}`);
    assertJsonResponse(res, "413");
    await assertUnchanged(before, "oversized body");
  });

  test("a body just under 1 MiB is accepted", async () => {
    const a = await svix.application.create({ name: "almost-big" });
    const res = await rawRequest(h, "POST", `/api/v1/app/${a.id}/msg`, {
      body: { eventType: "user.created", payload: { blob: "y".repeat(900 * 1024) } },
    });
    assert.equal(res.status, 202, `900 KiB message: expected 202, got ${res.status} ${res.text.slice(0, 300)}`);
  });
});

describe("conflicts (409)", () => {
  test("duplicate app uid is a JSON 409 and changes nothing", async () => {
    const before = await snapshot();
    const err = await expectApiError(svix.application.create({ name: "dup", uid: app.uid }), 409, undefined, "dup uid");
    assert.equal(typeof err.body, "object", "409 body is JSON");
    await assertUnchanged(before, "duplicate uid");
  });
});

describe("connection limits (503)", () => {
  // Opens a connection and resolves with what herald sends before closing it, or "" if it keeps
  // it open for `ms`. The socket stays open until `sockets` are destroyed.
  function connect(url, sockets, ms = 1000) {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      let got = "";
      const s = net.connect({ host: hostname, port: Number(port) });
      sockets.push(s);
      const timer = setTimeout(() => resolve(got), ms);
      s.on("data", (d) => (got += d));
      s.on("end", () => {
        clearTimeout(timer);
        resolve(got);
      });
      s.on("error", reject);
    });
  }

  test("HERALD_MAX_CONNECTIONS_PER_CLIENT: the connection over it gets 503 too_many_connections", async () => {
    const limited = await startHerald({ nodes: 1, env: { HERALD_MAX_CONNECTIONS_PER_CLIENT: "3" } });
    const sockets = [];
    try {
      for (let i = 0; i < 3; i++) assert.equal(await connect(limited.url, sockets, 300), "", `connection ${i + 1} is kept open`);
      const refused = await connect(limited.url, sockets);
      assert.match(refused, /^HTTP\/1\.1 503 /, refused);
      assert.match(refused, /\r\nRetry-After: 1\r\n/i, refused);
      assert.equal(JSON.parse(refused.slice(refused.indexOf("\r\n\r\n") + 4)).code, "too_many_connections");
      // Once one of the three leaves, requests are answered again.
      sockets[0].destroy();
      let status = 0;
      for (let i = 0; i < 50 && status !== 204; i++) {
        status = (await rawRequest(limited, "GET", "/api/v1/health", { token: null })).status;
      }
      assert.equal(status, 204);
    } finally {
      for (const s of sockets) s.destroy();
      await limited.stop();
    }
  });
});
