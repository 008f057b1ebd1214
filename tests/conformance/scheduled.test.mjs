// Scheduled messages: `deliverAt` on message create holds a message's first attempts until that
// time, on a real clock (a few seconds ahead), through a SIGKILL and restart, and on PostgreSQL
// with two nodes sharing the queue (each delivery arrives once). A deliverAt that is not a
// date-time, or more than 24 hours ahead, is a 422 that creates nothing.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  eventually,
  expectApiError,
  rawRequest,
  startHerald,
  startReceiver,
  uniq,
  verifyDelivery,
} from "./harness.mjs";

// How far ahead the tests schedule: long enough to tell "held" from "sent at once" on a busy
// machine, short enough for a fast suite.
const AHEAD_MS = 2500;
// herald rounds nothing: a delivery may not arrive before its time. The receiver stamps a
// request when its body is in, so it can only be later than the attempt's start.
const EARLY_SLACK_MS = 0;

let h;
let rx;
let svix;
const cleanups = [];

before(async () => {
  h = await startHerald();
  svix = h.svix;
  rx = await startReceiver();
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await h?.stop();
  await rx?.close();
});

async function appWithEndpoint(client, name) {
  const app = await client.application.create({ name, uid: uniq("app") });
  const path = `/${uniq(name)}`;
  const ep = await client.endpoint.create(app.id, { url: rx.url(path) });
  const { key } = await client.endpoint.getSecret(app.id, ep.id);
  return { app, ep, path, secret: key };
}

describe("deliverAt", () => {
  test("held until its time, then sent once; a message without one is not held behind it", async () => {
    const { app, ep, path, secret } = await appWithEndpoint(svix, "scheduled");
    const deliverAt = new Date(Date.now() + AHEAD_MS);
    const payload = { scheduled: true };
    const msg = await svix.message.create(app.id, { eventType: "order.later", payload, deliverAt });
    assert.equal(msg.deliverAt?.getTime(), deliverAt.getTime(), "the 202 echoes deliverAt to the millisecond");
    const now = await svix.message.create(app.id, { eventType: "order.now", payload: { now: true } });
    assert.equal(now.deliverAt, null, "a message without deliverAt reads back with none");

    const [first] = await rx.waitFor(path, 1, AHEAD_MS - 500);
    assert.equal(first.headers["webhook-id"], now.id, "the unscheduled message arrives first, at once");

    const [, later] = await rx.waitFor(path, 2, AHEAD_MS + 5000);
    verifyDelivery(secret, later, { msgId: msg.id, payload, what: "the scheduled delivery" });
    assert.ok(
      later.time >= deliverAt.getTime() - EARLY_SLACK_MS,
      `the scheduled delivery arrived ${deliverAt.getTime() - later.time} ms before its deliverAt`,
    );
    assert.equal((await svix.message.get(app.id, msg.id)).deliverAt?.getTime(), deliverAt.getTime());

    // Exactly once (with two nodes on PostgreSQL too), and recorded as a scheduled attempt.
    await eventually(async () => (await svix.messageAttempt.listByMsg(app.id, msg.id)).data.length === 1, {
      message: "the scheduled message's attempt is recorded",
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(rx.requests(path).filter((r) => r.headers["webhook-id"] === msg.id).length, 1);
    const attempts = await svix.messageAttempt.listByMsg(app.id, msg.id);
    assert.equal(attempts.data.length, 1);
    assert.equal(attempts.data[0].endpointId, ep.id);
    assert.equal(attempts.data[0].triggerType, 0, "a scheduled attempt, not a manual one");
  });

  test("a time already past is sent at once; a resend of a scheduled message is not held", async () => {
    const { app, ep, path } = await appWithEndpoint(svix, "past");
    const past = new Date(Date.now() - 60_000);
    const started = Date.now();
    const msg = await svix.message.create(app.id, { eventType: "order.past", payload: { p: 1 }, deliverAt: past });
    assert.equal(msg.deliverAt?.getTime(), past.getTime());
    const [got] = await rx.waitFor(path, 1, 2000);
    assert.ok(got.time - started < 2000, "delivered at once");

    const later = await svix.message.create(app.id, {
      eventType: "order.later",
      payload: { p: 2 },
      deliverAt: new Date(Date.now() + 60_000),
    });
    const resendAt = Date.now();
    await svix.messageAttempt.resend(app.id, later.id, ep.id);
    const [, resent] = await rx.waitFor(path, 2, 3000);
    assert.equal(resent.headers["webhook-id"], later.id);
    assert.ok(resent.time - resendAt < 3000, "the resend went out at once, not at deliverAt");
  });

  test("survives SIGKILL: after a restart it is still sent at its time, not before, once", async () => {
    const h1 = await startHerald({ nodes: 1 });
    cleanups.push(() => h1.stop({ keepDir: true, check: false }));
    const { app, path, secret } = await appWithEndpoint(h1.svix, "restart");
    const deliverAt = new Date(Date.now() + AHEAD_MS + 1000);
    const payload = { restart: true };
    const msg = await h1.svix.message.create(app.id, { eventType: "order.later", payload, deliverAt });
    h1.proc.kill("SIGKILL");
    await h1.exitPromise;

    const h2 = await startHerald({ nodes: 1, dbPath: h1.dbPath, token: h1.token });
    cleanups.push(() => h2.stop());
    const [got] = await rx.waitFor(path, 1, AHEAD_MS + 8000);
    verifyDelivery(secret, got, { msgId: msg.id, payload, what: "the scheduled delivery after a restart" });
    assert.ok(
      got.time >= deliverAt.getTime() - EARLY_SLACK_MS,
      `after the restart it arrived ${deliverAt.getTime() - got.time} ms before its deliverAt`,
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(rx.requests(path).length, 1, "sent once");
  });

  test("not a date-time, or more than 24 hours ahead: 422, and no message is created", async () => {
    const { app, path } = await appWithEndpoint(svix, "bad-deliver-at");
    const tooFar = new Date(Date.now() + 24 * 3600 * 1000 + 60_000);
    await expectApiError(
      svix.message.create(app.id, { eventType: "order.later", payload: {}, deliverAt: tooFar }),
      422,
      undefined,
      "deliverAt 24 h and a minute ahead",
    );
    for (const deliverAt of ["tomorrow", "2026-13-01T00:00:00Z", 1767225600, true, {}]) {
      const res = await rawRequest(h, "POST", `/api/v1/app/${app.id}/msg`, {
        body: { eventType: "order.later", payload: {}, deliverAt },
      });
      assert.equal(res.status, 422, `deliverAt ${JSON.stringify(deliverAt)}: ${res.status} ${res.text}`);
      const problems = JSON.parse(res.text).detail ?? [];
      assert.ok(
        problems.some((p) => p.loc?.includes("deliverAt")),
        `deliverAt ${JSON.stringify(deliverAt)}: the error names deliverAt: ${res.text}`,
      );
    }
    // Just under 24 hours ahead is taken.
    const nearly = await svix.message.create(app.id, {
      eventType: "order.later",
      payload: {},
      deliverAt: new Date(Date.now() + 24 * 3600 * 1000 - 60_000),
    });
    const list = await svix.message.list(app.id);
    assert.deepEqual(
      list.data.map((m) => m.id),
      [nearly.id],
      "only the valid message was created",
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(rx.requests(path).length, 0, "nothing was sent");
  });
});
