// Retention (HERALD_RETENTION purges payloads and attempts) and operational webhooks
// (HERALD_OPERATOR_URL/SECRET, and endpoints made through /operational-webhook/endpoint:
// endpoint.disabled, message.attempt.failing/recovered/exhausted), each operational webhook
// verified with standardwebhooks against its endpoint's secret.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  eventually,
  expectApiError,
  makeSecret,
  RFC3339,
  rawRequest,
  StdWebhook,
  startHerald,
  startReceiver,
  uniq,
  verifyDelivery,
} from "./harness.mjs";

describe("retention (HERALD_RETENTION=2s)", () => {
  let h;
  let rx;
  let svix;
  before(async () => {
    rx = await startReceiver();
    h = await startHerald({ env: { HERALD_RETENTION: "2s" } });
    svix = h.svix;
  });
  after(async () => {
    await h?.stop();
    await rx?.close();
  });

  test("a message older than the retention loses its payload and its attempts", async () => {
    const app = await svix.application.create({ name: "retention" });
    const path = `/${uniq("ret")}`;
    await svix.endpoint.create(app.id, { url: rx.url(path) });
    const payload = { keep: "me for 2 s" };
    const msg = await svix.message.create(app.id, { eventType: "x", payload });
    const sentAt = Date.now();
    await rx.waitFor(path, 1);
    await eventually(async () => (await svix.messageAttempt.listByMsg(app.id, msg.id)).data.length === 1, {
      message: "the attempt recorded",
    });

    const get = () => rawRequest(h, "GET", `/api/v1/app/${app.id}/msg/${msg.id}`);
    let last;
    try {
      await eventually(
        async () => {
          last = { msg: (await get()).json, attempts: (await svix.messageAttempt.listByMsg(app.id, msg.id)).data.length };
          return last.msg?.payloadExpired === true && last.attempts === 0;
        },
        { timeoutMs: 8000, intervalMs: 250, message: "payload and attempts purged" },
      );
    } catch {
      assert.fail(
        `HERALD_RETENTION=2s: ${Date.now() - sentAt} ms after the message was sent, ` +
          `GET /api/v1/app/{app}/msg/{msg} → ${JSON.stringify(last?.msg)} and ${last?.attempts} attempt(s) ` +
          "listed; expected payloadExpired: true, payload {} and no attempts within a few seconds",
      );
    }
    const waited = Date.now() - sentAt;
    console.log(`retention: purged ${waited} ms after the message was sent`);
    const expired = (await get()).json;
    assert.deepEqual(expired.payload, {}, "an expired message's payload reads as {}");
    assert.equal(expired.id, msg.id, "the message itself is kept");
    assert.equal(
      (await svix.message.get(app.id, msg.id, { withContent: true })).eventType,
      "x",
      "SDK get still works on an expired message",
    );

    // A message younger than the retention keeps everything.
    const fresh = await svix.message.create(app.id, { eventType: "x", payload: { fresh: 1 } });
    await rx.waitFor(path, 2);
    const got = (await rawRequest(h, "GET", `/api/v1/app/${app.id}/msg/${fresh.id}`)).json;
    assert.deepEqual(got.payload, { fresh: 1 }, "a fresh message keeps its payload");
    assert.equal(got.payloadExpired ?? false, false, "a fresh message is not expired");
  });
});

describe("operational webhooks", () => {
  const secret = makeSecret(32);
  let h;
  let rx;
  let svix;
  before(async () => {
    rx = await startReceiver();
    h = await startHerald({
      retrySchedule: Array(8).fill("100ms").join(","),
      env: { HERALD_OPERATOR_URL: rx.url("/ops"), HERALD_OPERATOR_SECRET: secret },
    });
    svix = h.svix;
  });
  after(async () => {
    await h?.stop();
    await rx?.close();
  });

  test("endpoint.disabled, message.attempt.failing/recovered/exhausted: signed, with Svix's payload shape", async () => {
    const appUid = uniq("opsapp");
    const app = await svix.application.create({ name: "ops", uid: appUid });
    const base = `/${uniq("ops")}`;
    rx.respond(`${base}/gone`, [410]);
    rx.respond(`${base}/flaky`, [500, 500, 500, 500, 200]); // fails 4 times, then succeeds
    rx.respond(`${base}/dead`, [500]); // exhausts 1 + 8 tries
    const gone = await svix.endpoint.create(app.id, { url: rx.url(`${base}/gone`) });
    const flaky = await svix.endpoint.create(app.id, { url: rx.url(`${base}/flaky`) });
    const dead = await svix.endpoint.create(app.id, { url: rx.url(`${base}/dead`) });
    const name = { [gone.id]: "gone", [flaky.id]: "flaky", [dead.id]: "dead" };

    const msg = await svix.message.create(app.id, { eventType: "x", payload: { ops: 1 } });
    await rx.waitFor(`${base}/flaky`, 5, 5000);
    await rx.waitFor(`${base}/dead`, 9, 5000);

    const parse = (r) => JSON.parse(r.body);
    const events = await eventually(
      () => {
        const evs = rx.requests("/ops").map((r) => ({ r, body: parse(r) }));
        const key = (e) => `${e.body.type}:${name[e.body.data?.endpointId] ?? e.body.data?.endpointId}`;
        const have = new Set(evs.map(key));
        const want = [
          "endpoint.disabled:gone",
          "message.attempt.failing:flaky",
          "message.attempt.recovered:flaky",
          "message.attempt.failing:dead",
          "message.attempt.exhausted:dead",
        ];
        return want.every((w) => have.has(w)) ? evs : null;
      },
      { timeoutMs: 5000, message: "the five operational webhooks at /ops" },
    ).catch((e) => {
      const got = rx.requests("/ops").map((r) => r.body);
      throw new Error(`${e.message}\noperational webhooks received: ${JSON.stringify(got, null, 1)}`);
    });
    await new Promise((r) => setTimeout(r, 300)); // let any extra ones arrive

    // Every operational webhook verifies with the operator secret.
    for (const r of rx.requests("/ops")) {
      assert.doesNotThrow(
        () => new StdWebhook(secret).verify(r.rawBody, r.headers),
        `operational webhook does not verify with HERALD_OPERATOR_SECRET: ${r.body}`,
      );
      verifyDelivery(secret, r, { what: "operational webhook" });
    }

    const byKey = (type, epName) =>
      rx
        .requests("/ops")
        .map(parse)
        .filter((b) => b.type === type && name[b.data?.endpointId] === epName);
    const count = (epName) =>
      rx
        .requests("/ops")
        .map(parse)
        .filter((b) => name[b.data?.endpointId] === epName)
        .map((b) => b.type)
        .sort();
    assert.deepEqual(count("flaky"), ["message.attempt.failing", "message.attempt.recovered"], "flaky endpoint's events");
    assert.deepEqual(count("dead"), ["message.attempt.exhausted", "message.attempt.failing"], "dead endpoint's events");
    assert.ok(events.length >= 5);

    for (const b of rx.requests("/ops").map(parse)) {
      assert.deepEqual(Object.keys(b).sort(), ["data", "timestamp", "type"], `top-level shape: ${JSON.stringify(b)}`);
      assert.match(b.timestamp, RFC3339, `timestamp: ${JSON.stringify(b)}`);
      assert.equal(b.data.appId, app.id, `data.appId: ${JSON.stringify(b)}`);
      assert.equal(b.data.endpointId in name, true, `data.endpointId: ${JSON.stringify(b)}`);
    }

    // endpoint.disabled
    const [disabled] = byKey("endpoint.disabled", "gone");
    assert.equal(disabled.data.trigger, "automatic", JSON.stringify(disabled));
    assert.equal(typeof disabled.data.reason, "string", JSON.stringify(disabled));
    assert.ok(disabled.data.reason.length > 0, JSON.stringify(disabled));
    assert.match(disabled.data.failSince ?? "", RFC3339, `failSince: ${JSON.stringify(disabled)}`);
    assert.equal((await svix.endpoint.get(app.id, gone.id)).disabled, true);

    // message.attempt.*: lastAttempt is the recorded attempt that triggered it.
    const checkAttemptEvent = async (type, ep, index, code) => {
      const [ev] = byKey(type, name[ep.id]);
      const what = `${type} for ${name[ep.id]}: ${JSON.stringify(ev)}`;
      assert.equal(ev.data.appUid, appUid, what);
      assert.equal(ev.data.msgId, msg.id, what);
      assert.equal(ev.data.endpointId, ep.id, what);
      const la = ev.data.lastAttempt;
      assert.ok(la && typeof la === "object", what);
      assert.equal(la.responseStatusCode, code, what);
      assert.match(la.timestamp, RFC3339, what);
      const attempts = [...(await svix.messageAttempt.listByMsg(app.id, msg.id, { endpointId: ep.id })).data].sort(
        (a, b) => a.timestamp - b.timestamp || a.id.localeCompare(b.id),
      );
      assert.equal(
        la.id,
        attempts[index]?.id,
        `${what}: lastAttempt.id should be attempt #${index + 1} (${attempts.map((a) => `${a.id}:${a.responseStatusCode}`)})`,
      );
    };
    await checkAttemptEvent("message.attempt.failing", flaky, 3, 500);
    await checkAttemptEvent("message.attempt.recovered", flaky, 4, 200);
    await checkAttemptEvent("message.attempt.failing", dead, 3, 500);
    await checkAttemptEvent("message.attempt.exhausted", dead, 8, 500);
  });
});

describe("operational webhook endpoints through the API", () => {
  let h;
  let rx;
  let svix;
  before(async () => {
    rx = await startReceiver();
    h = await startHerald({ retrySchedule: Array(5).fill("100ms").join(",") });
    svix = h.svix;
  });
  after(async () => {
    await h?.stop();
    await rx?.close();
  });

  // Makes `gone` answer 410 (endpoint.disabled) and `dead` 500 until its 6 tries are used
  // (message.attempt.failing, then .exhausted); returns the app and the two endpoints.
  async function causeTrouble() {
    const app = await svix.application.create({ name: "troubled", uid: uniq("troubled") });
    const base = `/${uniq("trouble")}`;
    rx.respond(`${base}/gone`, [410]);
    rx.respond(`${base}/dead`, [500]);
    const gone = await svix.endpoint.create(app.id, { url: rx.url(`${base}/gone`) });
    const dead = await svix.endpoint.create(app.id, { url: rx.url(`${base}/dead`) });
    await svix.message.create(app.id, { eventType: "x", payload: { trouble: 1 } });
    await rx.waitFor(`${base}/dead`, 6, 10_000);
    return { app, gone, dead };
  }
  const ops = () => svix.operationalWebhook.endpoint;

  test("none configured: none listed, and trouble writes no operational message", async () => {
    assert.deepEqual((await ops().list()).data, []);
    await causeTrouble();
    await new Promise((r) => setTimeout(r, 300));
    const apps = (await svix.application.list({ limit: 250 })).data;
    assert.ok(!apps.some((a) => a.uid === "herald-operator"), "no reserved app until an endpoint is made");
  });

  test("CRUD, secret and headers through the SDK; each endpoint gets the event types it filters for", async () => {
    const allSecret = makeSecret(32);
    const all = await ops().create({
      url: rx.url("/ops-all"),
      description: "every event",
      secret: allSecret,
      metadata: { team: "sre" },
      headers: { "X-Ops": "all" },
    });
    assert.match(all.id, /^ep_/);
    assert.equal(all.description, "every event");
    assert.deepEqual(all.metadata, { team: "sre" });
    const disabledOnly = await ops().create({
      url: rx.url("/ops-disabled"),
      uid: uniq("ops-disabled"),
      eventTypes: ["endpoint.disabled"],
    });
    assert.deepEqual(disabledOnly.eventTypes, ["endpoint.disabled"]);
    assert.equal((await ops().get(disabledOnly.uid)).id, disabledOnly.id, "addressed by uid");
    assert.deepEqual((await ops().list()).data.map((e) => e.id).sort(), [all.id, disabledOnly.id].sort());
    assert.equal((await ops().getSecret(all.id)).key, allSecret);
    assert.deepEqual((await ops().getHeaders(all.id)).headers, { "X-Ops": "all" });
    await ops().setHeaders(all.id, { headers: { "X-Ops": "everything" } });
    const upserted = await ops().upsert(all.id, { url: rx.url("/ops-all"), description: "still every event" });
    assert.equal(upserted.description, "still every event");

    const { gone, dead } = await causeTrouble();
    const types = (path) => rx.requests(path).map((r) => JSON.parse(r.body).type).sort();
    await eventually(
      () => types("/ops-all").includes("message.attempt.exhausted") && types("/ops-disabled").length >= 1,
      { timeoutMs: 10_000, message: "operational webhooks at /ops-all and /ops-disabled" },
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(types("/ops-all"), ["endpoint.disabled", "message.attempt.exhausted", "message.attempt.failing"]);
    assert.deepEqual(types("/ops-disabled"), ["endpoint.disabled"], "only the type it filters for");
    for (const r of rx.requests("/ops-all")) {
      assert.doesNotThrow(() => new StdWebhook(allSecret).verify(r.rawBody, r.headers), r.body);
      assert.equal(r.headers["x-ops"], "everything", "its custom header");
    }
    const disabled = JSON.parse(rx.requests("/ops-disabled")[0].body);
    assert.equal(disabled.data.endpointId, gone.id);
    assert.ok(JSON.parse(rx.requests("/ops-all").find((r) => JSON.parse(r.body).type === "message.attempt.exhausted").body).data.endpointId === dead.id);
    const opsSecret = (await ops().getSecret(disabledOnly.id)).key;
    assert.doesNotThrow(() => new StdWebhook(opsSecret).verify(rx.requests("/ops-disabled")[0].rawBody, rx.requests("/ops-disabled")[0].headers));

    // A rotated secret signs what follows; a deleted endpoint gets nothing more.
    await ops().rotateSecret(disabledOnly.id, { key: makeSecret(32) });
    assert.notEqual((await ops().getSecret(disabledOnly.id)).key, opsSecret);
    await ops().delete(all.id);
    await expectApiError(ops().get(all.id), 404, "not_found", "a deleted operational endpoint");
    assert.deepEqual((await ops().list()).data.map((e) => e.id), [disabledOnly.id]);
  });

  test("bad input and other callers are refused and change nothing", async () => {
    const before = (await ops().list()).data.map((e) => e.id);
    await expectApiError(ops().create({ url: "ftp://nope" }), 422, undefined, "a bad url");
    await expectApiError(ops().get("ep_2Jb8ZkqYbXzUnknown0000"), 404, "not_found", "an unknown id");
    const app = await svix.application.create({ name: "customer", uid: uniq("customer") });
    const access = await svix.authentication.appPortalAccess(app.id, {});
    for (const [method, path, body] of [
      ["GET", "/api/v1/operational-webhook/endpoint"],
      ["POST", "/api/v1/operational-webhook/endpoint", { url: rx.url("/sneaky") }],
    ]) {
      const res = await rawRequest(h, method, path, { token: access.token, body });
      assert.equal(res.status, 404, `${method} ${path} with an app token: ${res.status} ${res.text}`);
    }
    assert.deepEqual((await ops().list()).data.map((e) => e.id), before);
  });
});
