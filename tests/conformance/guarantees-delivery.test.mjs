// Delivery guarantees under failure: the retry schedule runs out, manual resend and recover,
// automatic disabling of a failing endpoint and its re-enabling, isolation of a hanging
// endpoint from a healthy one, and throttleRate.
//
// Each describe starts its own herald with the schedule it needs.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  ensureEventTypes,
  eventually,
  rawRequest,
  settled,
  sleep,
  startHerald,
  startReceiver,
  uniq,
  verifyDelivery,
} from "./harness.mjs";

/** Attempts of `msgId` (optionally to one endpoint), oldest first. */
async function attemptsOf(svix, appId, msgId, endpointId) {
  const r = await svix.messageAttempt.listByMsg(appId, msgId, endpointId ? { endpointId } : {});
  return [...r.data].sort((a, b) => a.timestamp - b.timestamp || a.id.localeCompare(b.id));
}

/** The message's delivery state at `endpointId`, from GET .../msg/{msg}/endpoint (SDK). */
async function destinationStatus(svix, appId, msgId, endpointId) {
  const r = await svix.messageAttempt.listAttemptedDestinations(appId, msgId);
  return r.data.find((d) => d.id === endpointId)?.status;
}

const ids = (reqs) => reqs.map((r) => r.headers["webhook-id"]);

describe("retry semantics (schedule 100ms,100ms)", () => {
  let h;
  let rx;
  let svix;
  before(async () => {
    rx = await startReceiver();
    h = await startHerald({ retrySchedule: "100ms,100ms" });
    svix = h.svix;
  });
  after(async () => {
    await h?.stop();
    await rx?.close();
  });

  async function failingEndpoint(name) {
    const app = await svix.application.create({ name });
    const path = `/${uniq(name)}`;
    rx.respond(path, [500]);
    const ep = await svix.endpoint.create(app.id, { url: rx.url(path) });
    const { key } = await svix.endpoint.getSecret(app.id, ep.id);
    return { app, ep, path, secret: key };
  }

  test("an always-failing delivery makes 1 + 2 attempts, ends fail, and is never tried again; resend is tried once", async () => {
    const { app, ep, path, secret } = await failingEndpoint("exhaust");
    const payload = { exhaust: true };
    const msg = await svix.message.create(app.id, { eventType: "x.failed", payload });
    const reqs = await rx.waitFor(path, 3, 3000);
    reqs.forEach((r, i) => verifyDelivery(secret, r, { msgId: msg.id, payload, what: `try ${i + 1}` }));

    await eventually(async () => (await destinationStatus(svix, app.id, msg.id, ep.id)) === 2, {
      message: `GET /app/${app.id}/msg/${msg.id}/endpoint → status 2 (fail) for ${ep.id}`,
    });
    const raw = await rawRequest(h, "GET", `/api/v1/app/${app.id}/msg/${msg.id}/endpoint`);
    const dest = raw.json?.data?.find((d) => d.id === ep.id);
    assert.equal(dest?.status, 2, `raw GET .../msg/{msg}/endpoint: ${raw.text}`);
    assert.equal(dest?.statusText, "fail", `raw GET .../msg/{msg}/endpoint: ${raw.text}`);
    assert.equal(dest?.nextAttempt ?? null, null, "an exhausted delivery has no next attempt");

    assert.deepEqual(await settled(h, app.id, msg.id), { success: 0, pending: 0, sending: 0, fail: 1 });
    assert.equal(rx.requests(path).length, 3, "no request after the schedule is exhausted");
    const attempts = await attemptsOf(svix, app.id, msg.id);
    assert.deepEqual(
      attempts.map((a) => [a.status, a.responseStatusCode, a.triggerType]),
      [
        [2, 500, 0],
        [2, 500, 0],
        [2, 500, 0],
      ],
      "schedule 100ms,100ms → exactly 3 failed scheduled attempts",
    );

    // Manual resend: one more try, triggerType 1, not retried when it fails.
    await svix.messageAttempt.resend(app.id, msg.id, ep.id);
    const all = await rx.waitFor(path, 4, 3000);
    verifyDelivery(secret, all[3], { msgId: msg.id, payload, what: "resend" });
    assert.deepEqual(await settled(h, app.id, msg.id), { success: 0, pending: 0, sending: 0, fail: 1 }, "the resend failed");
    assert.equal(rx.requests(path).length, 4, "a failed manual resend must not be retried");
    const withResend = await eventually(
      async () => {
        const a = await attemptsOf(svix, app.id, msg.id);
        return a.length >= 4 ? a : null;
      },
      { message: "4 attempts after the resend" },
    );
    assert.equal(withResend.length, 4, `attempts: ${JSON.stringify(withResend.map((a) => [a.status, a.triggerType]))}`);
    assert.equal(withResend[3].triggerType, 1, "the resend's attempt has triggerType 1 (manual)");
    assert.equal(withResend[3].status, 2);
    assert.equal(await destinationStatus(svix, app.id, msg.id, ep.id), 2, "still fail after the failed resend");
  });

  test("recover re-delivers failed messages in [since, until) only, once, and never successful ones", async () => {
    const app = await svix.application.create({ name: "recover-bounds" });
    const path = `/${uniq("recover")}`;
    // 200 for messages whose payload says ok, 500 for the rest.
    rx.respond(path, [(r) => (JSON.parse(r.body).ok ? 200 : 500)]);
    const ep = await svix.endpoint.create(app.id, { url: rx.url(path) });
    const { key } = await svix.endpoint.getSecret(app.id, ep.id);

    const waitFinal = async (msg, status) =>
      eventually(async () => (await destinationStatus(svix, app.id, msg.id, ep.id)) === status, {
        message: `delivery of ${msg.id} to end with status ${status}`,
        timeoutMs: 3000,
      });

    const old = await svix.message.create(app.id, { eventType: "x", payload: { which: "old" } });
    await waitFinal(old, 2);
    await sleep(50);
    const boundary = new Date();
    await sleep(50);
    const recent = await svix.message.create(app.id, { eventType: "x", payload: { which: "recent" } });
    const ok = await svix.message.create(app.id, { eventType: "x", payload: { which: "ok", ok: true } });
    await waitFinal(recent, 2);
    await waitFinal(ok, 0);
    const settleAll = async () => {
      for (const m of [old, recent, ok]) await settled(h, app.id, m.id);
    };
    await settleAll();
    const before = rx.requests(path).length;
    assert.equal(before, 3 + 3 + 1, `3 tries each for the failing messages, 1 for the ok one: ${ids(rx.requests(path))}`);

    await svix.endpoint.recover(app.id, ep.id, { since: boundary });
    await rx.waitFor(path, before + 1, 3000);
    await settleAll();
    const recovered = rx.requests(path).slice(before);
    assert.deepEqual(
      ids(recovered),
      [recent.id],
      `recover since ${boundary.toISOString()}: only the failed message after it, once ` +
        `(old ${old.id}, recent ${recent.id}, ok ${ok.id})`,
    );
    verifyDelivery(key, recovered[0], { msgId: recent.id, payload: { which: "recent" }, what: "recovered delivery" });
    const recentAttempts = await eventually(
      async () => {
        const a = await attemptsOf(svix, app.id, recent.id);
        return a.length === 4 ? a : null;
      },
      { message: "4 attempts of the recovered message" },
    );
    assert.equal(recentAttempts[3].triggerType, 1, "a recovered attempt is manual (triggerType 1)");

    // [since, until) reaching back to the old message only.
    const mid = rx.requests(path).length;
    await svix.endpoint.recover(app.id, ep.id, { since: new Date(boundary.getTime() - 60_000), until: boundary });
    await rx.waitFor(path, mid + 1, 3000);
    await settleAll();
    assert.deepEqual(ids(rx.requests(path).slice(mid)), [old.id], "recover until the boundary: only the old message");
  });
});

describe("endpoint health (HERALD_DISABLE_AFTER=1s, schedule 8×200ms)", () => {
  let h;
  let rx;
  let svix;
  before(async () => {
    rx = await startReceiver();
    h = await startHerald({
      retrySchedule: Array(8).fill("200ms").join(","),
      env: { HERALD_DISABLE_AFTER: "1s" },
    });
    svix = h.svix;
  });
  after(async () => {
    await h?.stop();
    await rx?.close();
  });

  test("failing for 1 s disables the endpoint with a reason; re-enabled it resumes; stats add up", async () => {
    const app = await svix.application.create({ name: "health" });
    const path = `/${uniq("health")}`;
    let failures = Infinity; // how many of the next requests fail
    rx.respond(path, [
      () => {
        if (failures > 0) {
          failures--;
          return 500;
        }
        return 200;
      },
    ]);
    const ep = await svix.endpoint.create(app.id, { url: rx.url(path) });
    const { key } = await svix.endpoint.getSecret(app.id, ep.id);
    const getRaw = async () => {
      const r = await rawRequest(h, "GET", `/api/v1/app/${app.id}/endpoint/${ep.id}`);
      assert.equal(r.status, 200, r.text);
      return r.json;
    };

    const m1 = await svix.message.create(app.id, { eventType: "x", payload: { m: 1 } });
    const disabled = await eventually(
      async () => {
        const e = await getRaw();
        return e.disabled === true ? e : null;
      },
      { timeoutMs: 4000, message: "endpoint disabled after ~1 s of failures" },
    );
    const tries = rx.requests(path);
    const span = tries.at(-1).time - tries[0].time;
    assert.ok(span >= 850, `disabled after failing for only ${span} ms (${tries.length} tries); HERALD_DISABLE_AFTER=1s`);
    assert.ok(
      tries.length < 9,
      `${tries.length} tries: the schedule ran out (9 tries) before the endpoint was disabled`,
    );
    assert.equal(typeof disabled.disabledReason, "string", `GET endpoint: no disabledReason: ${JSON.stringify(disabled)}`);
    assert.match(disabled.disabledReason, /fail/i, "the reason says the endpoint was failing");
    assert.equal((await svix.endpoint.get(app.id, ep.id)).disabled, true, "SDK sees disabled too");

    const n1 = tries.length;
    assert.deepEqual(await settled(h, app.id, m1.id), { success: 0, pending: 0, sending: 0, fail: 1 }, "the pending delivery ended fail");
    assert.equal(rx.requests(path).length, n1, "no request after the endpoint was disabled");
    assert.equal(await destinationStatus(svix, app.id, m1.id, ep.id), 2, "the pending delivery ended fail");

    // Re-enable; one failure then success. The failing run was cleared, so the first new
    // failure must not disable it again at once.
    failures = 1;
    await svix.endpoint.patch(app.id, ep.id, { disabled: false });
    const enabled = await getRaw();
    assert.equal(enabled.disabled, false);
    assert.equal(enabled.disabledReason ?? null, null, `re-enabled endpoint keeps a reason: ${JSON.stringify(enabled)}`);
    const m2 = await svix.message.create(app.id, { eventType: "x", payload: { m: 2 } });
    const reqs = await rx.waitFor(path, n1 + 2, 3000);
    verifyDelivery(key, reqs[n1 + 1], { msgId: m2.id, payload: { m: 2 }, what: "delivery after re-enabling" });
    assert.equal((await getRaw()).disabled, false, "one failure after re-enabling must not disable it again");

    const stats = await eventually(
      async () => {
        const s = await svix.endpoint.getStats(app.id, ep.id);
        return s.success === 1 ? s : null;
      },
      { message: "stats success=1" },
    );
    assert.deepEqual(
      { success: stats.success, fail: stats.fail, pending: stats.pending, sending: stats.sending },
      { success: 1, fail: 1, pending: 0, sending: 0 },
      "stats: m1 failed (disabled), m2 delivered",
    );
  });
});

describe("isolation of a hanging endpoint", () => {
  let h;
  let rx;
  let svix;
  before(async () => {
    rx = await startReceiver();
    h = await startHerald({ env: { HERALD_REQUEST_TIMEOUT: "2s" } });
    svix = h.svix;
    await ensureEventTypes(svix, ["slow.event", "fast.event"]);
  });
  after(async () => {
    await h?.stop();
    await rx?.close(); // ends the hanging responses
  });

  test("32 deliveries hanging at A (its whole concurrency cap) do not hold back 20 to B", async () => {
    const app = await svix.application.create({ name: "isolation" });
    const base = `/${uniq("iso")}`;
    rx.respond(`${base}/a`, [{ status: 200, delayMs: 20_000 }]);
    const a = await svix.endpoint.create(app.id, { url: rx.url(`${base}/a`), eventTypes: ["slow.event"] });
    const b = await svix.endpoint.create(app.id, { url: rx.url(`${base}/b`), eventTypes: ["fast.event"] });
    const { key: keyB } = await svix.endpoint.getSecret(app.id, b.id);

    for (let i = 0; i < 4; i++) {
      await Promise.all(
        Array.from({ length: 10 }, (_, j) =>
          svix.message.create(app.id, { eventType: "slow.event", payload: { a: i * 10 + j } }),
        ),
      );
    }
    // A's cap (HERALD_ENDPOINT_CONCURRENCY, 32 by default) are held open at once; the other 8
    // wait for a slot, which none frees before the 2 s request timeout.
    await rx.waitFor(`${base}/a`, 32, 3000);
    assert.equal(rx.maxConcurrent(`${base}/a`), 32, "32 requests held open at A at once");
    assert.equal(rx.requests(`${base}/a`).length, 32, "no more than A's cap of 32 sent to it");

    const acked = new Map();
    const sending = (async () => {
      for (let i = 0; i < 20; i++) {
        const msg = await svix.message.create(app.id, { eventType: "fast.event", payload: { b: i } });
        acked.set(msg.id, { at: Date.now(), payload: { b: i } });
      }
    })();
    const [reqs] = await Promise.all([rx.waitFor(`${base}/b`, 20, 5000), sending]);
    const latencies = reqs.map((r) => {
      const m = acked.get(r.headers["webhook-id"]);
      assert.ok(m, `B got a message it was not sent: webhook-id ${r.headers["webhook-id"]} body ${r.body}`);
      verifyDelivery(keyB, r, { payload: m.payload, what: "delivery to B" });
      return r.time - m.at;
    });
    const worst = Math.max(...latencies);
    console.log(
      `isolation: ${rx.requests(`${base}/a`).length} requests hanging at A; ` +
        `B latency after 202: max ${worst} ms, median ${latencies.sort((x, y) => x - y)[10]} ms`,
    );
    assert.ok(
      worst < 1500,
      `a delivery to healthy B landed ${worst} ms after its 202 while A hangs (request timeout 2 s); ` +
        `latencies ${latencies.join(",")}`,
    );
    assert.equal(new Set(ids(reqs)).size, 20, "each B message once");
    assert.equal(rx.requests(`${base}/b`).length, 20, "B got only its own 20 messages");

    // Clean up: stop A's retries; rx.close() in after() ends the hanging responses.
    await svix.endpoint.delete(app.id, a.id);
  });
});

describe("throttleRate", () => {
  let h;
  let rx;
  let svix;
  before(async () => {
    rx = await startReceiver();
    h = await startHerald();
    svix = h.svix;
  });
  after(async () => {
    await h?.stop();
    await rx?.close();
  });

  test("throttleRate 5: 15 messages spread over ~2 s; an unthrottled endpoint gets them at once", async () => {
    const app = await svix.application.create({ name: "throttle" });
    const base = `/${uniq("thr")}`;
    const slow = await svix.endpoint.create(app.id, { url: rx.url(`${base}/throttled`), throttleRate: 5 });
    assert.equal(slow.throttleRate, 5, "throttleRate is kept");
    await svix.endpoint.create(app.id, { url: rx.url(`${base}/free`) });

    // Sequential creates: concurrent ones can stall in herald's API (see the report), which
    // would blur the timing; each delivery is judged against its own 202.
    const ackAt = new Map();
    for (let i = 0; i < 15; i++) {
      const msg = await svix.message.create(app.id, { eventType: "x", payload: { i } });
      ackAt.set(msg.id, Date.now());
    }
    const free = await rx.waitFor(`${base}/free`, 15, 3000);
    const throttled = await rx.waitFor(`${base}/throttled`, 15, 8000);
    const lag = (r) => r.time - ackAt.get(r.headers["webhook-id"]);
    const t = throttled.map((r) => r.time - throttled[0].time);
    console.log(
      `throttleRate: unthrottled lag after each 202 ${free.map(lag).join(",")}; ` +
        `throttled offsets from its first arrival ${t.join(",")} (creates took ${Math.max(...ackAt.values()) - Math.min(...ackAt.values())} ms)`,
    );

    const freeLag = Math.max(...free.map(lag));
    assert.ok(freeLag < 500, `the unthrottled endpoint got a message ${freeLag} ms after its 202 (lags ${free.map(lag)})`);
    const burstLag = Math.max(...throttled.slice(0, 5).map(lag));
    assert.ok(burstLag < 500, `the first 5 (one second's bucket) should go at once; one came ${burstLag} ms after its 202`);
    for (let i = 5; i < 15; i++) {
      const earliest = (i - 4) * 200 - 120; // a token every 200 ms after the bucket of 5 is spent
      assert.ok(
        t[i] >= earliest,
        `throttleRate 5/s: delivery #${i + 1} came at +${t[i]} ms, before +${earliest} ms (offsets ${t.join(",")})`,
      );
    }
    assert.ok(t[14] >= 1700, `15 messages at 5/s (bucket 5) should take ≥ ~2 s, took ${t[14]} ms`);
    // ...and then ~5/s: with messages waiting, each goes once its token is there (not in a
    // burst after a long pause). Deadline: max(its token, its message's 202) + 400 ms.
    const acks = [...ackAt.values()].sort((x, y) => x - y).map((a) => a - throttled[0].time);
    for (let i = 5; i < 15; i++) {
      const deadline = Math.max((i - 4) * 200, acks[i]) + 400;
      assert.ok(
        t[i] <= deadline,
        `throttleRate 5/s with messages queued: delivery #${i + 1} came at +${t[i]} ms, its token was due at ` +
          `+${(i - 4) * 200} ms (deadline +${deadline} ms); offsets ${t.join(",")}`,
      );
    }
    assert.ok(t[14] <= 3000, `throttled delivery lags: 15 messages took ${t[14]} ms at 5/s (offsets ${t.join(",")})`);
    assert.equal(new Set(ids(throttled)).size, 15, "each message once to the throttled endpoint");
  });
});
