// Retention (HERALD_RETENTION purges payloads and attempts) and operational webhooks
// (HERALD_OPERATOR_URL/SECRET: endpoint.disabled, message.attempt.failing/recovered/exhausted),
// each operational webhook verified with standardwebhooks against the operator secret.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  eventually,
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
