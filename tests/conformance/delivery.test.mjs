// Messages, fan-out, attempts, retries, idempotency, uid addressing and large payloads.
// Every delivery is checked on a loopback receiver with standardwebhooks AND svix's Webhook.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  assertRecentDate,
  collectAll,
  ensureEventTypes,
  eventually,
  expectApiError,
  rawRequest,
  settled,
  startHerald,
  startReceiver,
  uniq,
  verifyDelivery,
} from "./harness.mjs";

let h;
let rx;
let svix;

/** How long "nothing arrives" is observed after the expected deliveries landed. */

before(async () => {
  h = await startHerald(); // retry schedule 100ms,200ms,400ms
  svix = h.svix;
  rx = await startReceiver();
  await ensureEventTypes(svix, ["user.created", "invoice.paid", "order.shipped"]);
});

after(async () => {
  await h?.stop();
  await rx?.close();
});

/** A fresh app with one endpoint on a fresh receiver path; returns ids, path and secret. */
async function appWithEndpoint(name, endpointIn = {}) {
  const app = await svix.application.create({ name, uid: uniq("app") });
  const path = `/${uniq(name)}`;
  const ep = await svix.endpoint.create(app.id, { url: rx.url(path), ...endpointIn });
  const { key } = await svix.endpoint.getSecret(app.id, ep.id);
  return { app, ep, path, secret: key };
}

describe("messages", () => {
  test("create returns msg_ id, eventType, eventId, timestamp; payload with withContent", async () => {
    const { app, path, secret } = await appWithEndpoint("msg-create");
    const payload = { user: { id: 42, email: "a@example.com" }, tags: ["x", "y"], ok: true, n: null };
    const eventId = uniq("evt");
    const msg = await svix.message.create(
      app.id,
      { eventType: "user.created", payload, eventId },
      { withContent: true },
    );
    assert.ok(msg.id?.startsWith("msg_"), `message id should start with "msg_", got ${msg.id}`);
    assert.equal(msg.eventType, "user.created");
    assert.equal(msg.eventId, eventId);
    assert.deepEqual(msg.payload, payload, "with_content=true: the payload is echoed");
    assertRecentDate(msg.timestamp, "message.timestamp");

    const [req] = await rx.waitFor(path, 1);
    verifyDelivery(secret, req, { msgId: msg.id, payload, what: "first delivery" });
  });

  test("POST /msg answers 202 Accepted", async () => {
    const { app } = await appWithEndpoint("msg-202");
    const res = await rawRequest(h, "POST", `/api/v1/app/${app.id}/msg`, {
      body: { eventType: "user.created", payload: { raw: true } },
    });
    assert.equal(res.status, 202, `message create: expected 202, got ${res.status} ${res.text}`);
    assert.ok(res.json?.id?.startsWith("msg_"));
  });

  test("get returns the message (by id and by eventId)", async () => {
    const { app } = await appWithEndpoint("msg-get");
    const payload = { hello: "world" };
    const eventId = uniq("evt");
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload, eventId });
    const got = await svix.message.get(app.id, msg.id, { withContent: true });
    assert.equal(got.id, msg.id);
    assert.equal(got.eventType, "user.created");
    assert.equal(got.eventId, eventId);
    assert.deepEqual(got.payload, payload);
    assert.equal(got.timestamp.getTime(), msg.timestamp.getTime(), "timestamp is stable");
    const byEventId = await svix.message.get(app.id, eventId);
    assert.equal(byEventId.id, msg.id, "a message can be fetched by its eventId (Svix: MessageIdOrUid)");
  });

  test("list returns messages newest first", async () => {
    const { app } = await appWithEndpoint("msg-list");
    const m1 = await svix.message.create(app.id, { eventType: "user.created", payload: { n: 1 } });
    const m2 = await svix.message.create(app.id, { eventType: "invoice.paid", payload: { n: 2 } });
    const m3 = await svix.message.create(app.id, { eventType: "user.created", payload: { n: 3 } });
    const page = await svix.message.list(app.id, { withContent: true });
    assert.deepEqual(page.data.map((m) => m.id), [m3.id, m2.id, m1.id], "newest first");
    assert.deepEqual(page.data.map((m) => m.payload), [{ n: 3 }, { n: 2 }, { n: 1 }]);
    assert.equal(page.done, true);
    const filtered = await svix.message.list(app.id, { eventTypes: ["invoice.paid"] });
    assert.deepEqual(filtered.data.map((m) => m.id), [m2.id], "event_types filter on message list");
  });

  test("duplicate eventId → 409", async () => {
    const { app } = await appWithEndpoint("msg-dup-eventid");
    const eventId = uniq("evt");
    await svix.message.create(app.id, { eventType: "user.created", payload: {}, eventId });
    await expectApiError(
      svix.message.create(app.id, { eventType: "user.created", payload: {}, eventId }),
      409,
      undefined,
      "message with a duplicate eventId",
    );
    assert.equal((await svix.message.list(app.id)).data.length, 1, "the duplicate must not be stored");
  });

  test("custom endpoint headers arrive with the delivery", async () => {
    const { app, ep, path, secret } = await appWithEndpoint("msg-headers", {
      headers: { "X-From-Create": "created" },
    });
    const msg1 = await svix.message.create(app.id, { eventType: "user.created", payload: { a: 1 } });
    const [r1] = await rx.waitFor(path, 1);
    verifyDelivery(secret, r1, { msgId: msg1.id, payload: { a: 1 } });
    assert.equal(r1.headers["x-from-create"], "created", "header set via EndpointIn.headers must be sent");

    await svix.endpoint.setHeaders(app.id, ep.id, { headers: { "X-From-Put": "put" } });
    const msg2 = await svix.message.create(app.id, { eventType: "user.created", payload: { a: 2 } });
    const [, r2] = await rx.waitFor(path, 2);
    verifyDelivery(secret, r2, { msgId: msg2.id, payload: { a: 2 } });
    assert.equal(r2.headers["x-from-put"], "put", "header set via PUT .../headers must be sent");
  });

  test("no endpoint: message is still accepted and listed", async () => {
    const app = await svix.application.create({ name: "no-endpoints" });
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload: { lonely: true } });
    assert.ok(msg.id.startsWith("msg_"));
    assert.equal((await svix.message.list(app.id)).data[0]?.id, msg.id);
  });
});

describe("fan-out and filters", () => {
  test("eventTypes filter: matching and unfiltered endpoints receive, others never do", async () => {
    const app = await svix.application.create({ name: "fanout" });
    const base = `/${uniq("fan")}`;
    const eps = {};
    for (const [name, eventTypes] of [
      ["users", ["user.created"]],
      ["invoices", ["invoice.paid"]],
      ["all", undefined],
    ]) {
      const ep = await svix.endpoint.create(app.id, { url: rx.url(`${base}/${name}`), eventTypes });
      eps[name] = { ep, secret: (await svix.endpoint.getSecret(app.id, ep.id)).key };
    }
    const payload = { user: "u1" };
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload });
    const [ru] = await rx.waitFor(`${base}/users`, 1);
    const [ra] = await rx.waitFor(`${base}/all`, 1);
    verifyDelivery(eps.users.secret, ru, { msgId: msg.id, payload, what: "filtered endpoint" });
    verifyDelivery(eps.all.secret, ra, { msgId: msg.id, payload, what: "unfiltered endpoint" });
    assert.throws(
      () => verifyDelivery(eps.all.secret, ru, { msgId: msg.id }),
      "each endpoint is signed with its own secret",
    );
    assert.deepEqual(await settled(h, app.id, msg.id), { success: 2, pending: 0, sending: 0, fail: 0 }, "two endpoints subscribed");
    assert.equal(rx.requests(`${base}/invoices`).length, 0, "invoice.paid endpoint must not get user.created");
    assert.equal(rx.requests(`${base}/users`).length, 1, "exactly one delivery per endpoint");
    assert.equal(rx.requests(`${base}/all`).length, 1, "exactly one delivery per endpoint");

    const msg2 = await svix.message.create(app.id, { eventType: "invoice.paid", payload: { inv: 1 } });
    const [ri] = await rx.waitFor(`${base}/invoices`, 1);
    verifyDelivery(eps.invoices.secret, ri, { msgId: msg2.id, payload: { inv: 1 } });
    await rx.waitFor(`${base}/all`, 2);
    assert.deepEqual(await settled(h, app.id, msg2.id), { success: 2, pending: 0, sending: 0, fail: 0 }, "two endpoints subscribed");
    assert.equal(rx.requests(`${base}/users`).length, 1, "user.created endpoint must not get invoice.paid");
  });

  test("channels filter", async () => {
    const app = await svix.application.create({ name: "channels" });
    const base = `/${uniq("chan")}`;
    const p1 = await svix.endpoint.create(app.id, { url: rx.url(`${base}/p1`), channels: ["project-1"] });
    await svix.endpoint.create(app.id, { url: rx.url(`${base}/p2`), channels: ["project-2"] });
    await svix.endpoint.create(app.id, { url: rx.url(`${base}/any`) });
    const secret = (await svix.endpoint.getSecret(app.id, p1.id)).key;
    const msg = await svix.message.create(app.id, {
      eventType: "user.created",
      payload: { c: 1 },
      channels: ["project-1"],
    });
    assert.deepEqual(msg.channels, ["project-1"], "channels echoed on the message");
    const [r] = await rx.waitFor(`${base}/p1`, 1);
    verifyDelivery(secret, r, { msgId: msg.id, payload: { c: 1 } });
    await rx.waitFor(`${base}/any`, 1);
    assert.deepEqual(await settled(h, app.id, msg.id), { success: 2, pending: 0, sending: 0, fail: 0 }, "two endpoints take the channel");
    assert.equal(rx.requests(`${base}/p2`).length, 0, "project-2 endpoint must not receive a project-1 message");
  });
});

describe("attempts", () => {
  test("listByMsg / listByEndpoint use Svix's fields; status filter; withContent", async () => {
    const app = await svix.application.create({ name: "attempts" });
    const base = `/${uniq("att")}`;
    rx.respond(`${base}/ok`, [{ status: 200, body: "receiver says hi" }]);
    rx.respond(`${base}/bad`, [{ status: 500, body: "receiver is broken" }]);
    const ok = await svix.endpoint.create(app.id, { url: rx.url(`${base}/ok`) });
    const bad = await svix.endpoint.create(app.id, { url: rx.url(`${base}/bad`) });
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload: { att: 1 } });

    // schedule 100ms,200ms,400ms → 1 try + 3 retries to the failing endpoint
    await rx.waitFor(`${base}/ok`, 1);
    await rx.waitFor(`${base}/bad`, 4, 5000);

    const byMsg = await eventually(
      async () => {
        const r = await svix.messageAttempt.listByMsg(app.id, msg.id);
        return r.data.length >= 5 ? r : null;
      },
      { message: "5 attempts for the message (1 ok + 4 failed)" },
    );
    assert.equal(byMsg.data.length, 5, "1 success + 4 failures");
    for (const a of byMsg.data) {
      assert.ok(a.id?.startsWith("atmpt_"), `attempt id should start with atmpt_: ${a.id}`);
      assert.equal(a.msgId, msg.id);
      assert.ok([ok.id, bad.id].includes(a.endpointId), `endpointId ${a.endpointId}`);
      assert.equal(typeof a.responseStatusCode, "number", "responseStatusCode is a number");
      assert.equal(typeof a.responseDurationMs, "number", "responseDurationMs is a number");
      assert.ok(a.responseDurationMs >= 0);
      assert.equal(a.triggerType, 0, "scheduled attempts have triggerType 0");
      assertRecentDate(a.timestamp, "attempt.timestamp");
      if (a.endpointId === ok.id) {
        assert.equal(a.url, rx.url(`${base}/ok`));
        assert.equal(a.responseStatusCode, 200);
        assert.equal(a.status, 0, "success status is 0");
        assert.equal(a.statusText, "success");
      } else {
        assert.equal(a.url, rx.url(`${base}/bad`));
        assert.equal(a.responseStatusCode, 500);
        assert.equal(a.status, 2, "failed status is 2");
        assert.equal(a.statusText, "fail");
      }
    }

    const okList = await svix.messageAttempt.listByEndpoint(app.id, ok.id);
    assert.equal(okList.data.length, 1);
    assert.equal(okList.data[0].endpointId, ok.id);
    const badList = await svix.messageAttempt.listByEndpoint(app.id, bad.id);
    assert.equal(badList.data.length, 4, "every failed try is an attempt");

    const okSuccess = await svix.messageAttempt.listByEndpoint(app.id, ok.id, { status: 0 });
    const okFail = await svix.messageAttempt.listByEndpoint(app.id, ok.id, { status: 2 });
    const badSuccess = await svix.messageAttempt.listByEndpoint(app.id, bad.id, { status: 0 });
    const badFail = await svix.messageAttempt.listByEndpoint(app.id, bad.id, { status: 2 });
    assert.equal(okSuccess.data.length, 1, "status=0 on the good endpoint");
    assert.equal(okFail.data.length, 0, "status=2 on the good endpoint");
    assert.equal(badSuccess.data.length, 0, "status=0 on the failing endpoint");
    assert.equal(badFail.data.length, 4, "status=2 on the failing endpoint");
    assert.ok(badFail.data.every((a) => a.status === 2));

    const withContent = await svix.messageAttempt.listByEndpoint(app.id, ok.id, { withContent: true });
    assert.equal(withContent.data[0].response, "receiver says hi", "withContent returns the receiver's body");
    const byMsgContent = await svix.messageAttempt.listByMsg(app.id, msg.id, { withContent: true, endpointId: bad.id });
    assert.equal(byMsgContent.data.length, 4, "listByMsg endpoint_id filter");
    assert.ok(byMsgContent.data.every((a) => a.response === "receiver is broken"));

    assert.deepEqual(await settled(h, app.id, msg.id), { success: 1, pending: 0, sending: 0, fail: 1 });
    assert.equal(rx.requests(`${base}/bad`).length, 4, "no tries beyond the retry schedule");
    assert.equal(rx.requests(`${base}/ok`).length, 1, "a success is never re-sent");
  });

  test("attempt lists filter by statusCodeClass, eventTypes, channel and tag; withMsg carries the message", async () => {
    const app = await svix.application.create({ name: "attempt-filters", uid: uniq("app") });
    const base = `/${uniq("filters")}`;
    rx.respond(`${base}/ok`, [200]);
    rx.respond(`${base}/bad`, [400]);
    const ok = await svix.endpoint.create(app.id, { url: rx.url(`${base}/ok`) });
    const bad = await svix.endpoint.create(app.id, { url: rx.url(`${base}/bad`) });
    const send = (eventType, extra) => svix.message.create(app.id, { eventType, payload: { eventType }, ...extra });
    const eu = await send("invoice.paid", { channels: ["eu"], tags: ["vip"] });
    const us = await send("user.created", { channels: ["us"] });
    const plain = await send("order.shipped");
    for (const m of [eu, us, plain]) await settled(h, app.id, m.id, { timeoutMs: 10_000 });

    const ids = async (endpointId, options) =>
      (await svix.messageAttempt.listByEndpoint(app.id, endpointId, options)).data.map((a) => a.msgId).sort();
    const all = [eu.id, us.id, plain.id].sort();
    assert.deepEqual(await ids(ok.id, {}), all);
    assert.deepEqual(await ids(ok.id, { statusCodeClass: 200 }), all, "2xx at the good endpoint");
    assert.deepEqual(await ids(ok.id, { statusCodeClass: 400 }), [], "no 4xx there");
    // Every try at the failing endpoint (4 per message: the schedule's 3 retries) is a 4xx.
    const badAll = await svix.messageAttempt.listByEndpoint(app.id, bad.id, { statusCodeClass: 400 });
    assert.equal(badAll.data.length, 12);
    assert.ok(badAll.data.every((a) => a.responseStatusCode === 400));
    assert.deepEqual(await ids(bad.id, { statusCodeClass: 200 }), []);
    assert.deepEqual(await ids(bad.id, { statusCodeClass: 0 }), [], "class 0: no response at all");

    assert.deepEqual(await ids(ok.id, { eventTypes: ["invoice.paid", "order.shipped"] }), [eu.id, plain.id].sort());
    assert.deepEqual(await ids(ok.id, { channel: "eu" }), [eu.id]);
    assert.deepEqual(await ids(ok.id, { tag: "vip" }), [eu.id]);
    assert.deepEqual(await ids(ok.id, { tag: "vip", channel: "us" }), [], "filters combine");
    const byMsg = await svix.messageAttempt.listByMsg(app.id, us.id, { channel: "us", statusCodeClass: 400 });
    assert.equal(byMsg.data.length, 4, "listByMsg filters too");
    assert.ok(byMsg.data.every((a) => a.endpointId === bad.id));
    assert.equal((await svix.messageAttempt.listByMsg(app.id, us.id, { tag: "vip" })).data.length, 0);

    // withMsg: each attempt carries its message, payload included.
    const withMsg = await rawRequest(h, "GET", `/api/v1/app/${app.id}/attempt/endpoint/${ok.id}?with_msg=true&channel=eu`);
    const items = JSON.parse(withMsg.text).data;
    assert.equal(items.length, 1);
    assert.equal(items[0].msg?.id, eu.id);
    assert.deepEqual(items[0].msg.payload, { eventType: "invoice.paid" });
    assert.deepEqual(items[0].msg.tags, ["vip"]);
    const without = JSON.parse((await rawRequest(h, "GET", `/api/v1/app/${app.id}/attempt/endpoint/${ok.id}`)).text).data;
    assert.ok(without.every((a) => !("msg" in a)), "no msg unless asked");

    // Messages list by tag; status 4 (canceled) is a value that matches nothing here.
    assert.deepEqual((await svix.message.list(app.id, { tag: "vip" })).data.map((m) => m.id), [eu.id]);
    // The SDK's message.list has no status option: said over raw HTTP.
    const canceled = await rawRequest(h, "GET", `/api/v1/app/${app.id}/msg?status=4`);
    assert.equal(canceled.status, 200, canceled.text);
    assert.deepEqual(JSON.parse(canceled.text).data, []);
    assert.deepEqual(await ids(ok.id, { status: 4 }), []);
    for (const q of ["status_code_class=250", "status_code_class=2xx", "status=5"]) {
      const res = await rawRequest(h, "GET", `/api/v1/app/${app.id}/attempt/endpoint/${ok.id}?${q}`);
      assert.equal(res.status, 422, `${q}: ${res.status} ${res.text}`);
    }
  });

  test("listAttemptedDestinations: each endpoint once, its latest delivery's state, in pages", async () => {
    const app = await svix.application.create({ name: "destinations", uid: uniq("app") });
    const base = `/${uniq("dest")}`;
    const eps = [];
    for (let i = 0; i < 5; i++) eps.push(await svix.endpoint.create(app.id, { url: rx.url(`${base}/${i}`) }));
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload: { d: 1 } });
    await settled(h, app.id, msg.id);
    await svix.messageAttempt.resend(app.id, msg.id, eps[2].id);
    await rx.waitFor(`${base}/2`, 2);
    await settled(h, app.id, msg.id);

    const pages = await collectAll((iterator) =>
      svix.messageAttempt.listAttemptedDestinations(app.id, msg.id, { limit: 2, iterator }),
    );
    assert.deepEqual(pages.map((p) => p.data.length), [2, 2, 1]);
    assert.deepEqual(pages.map((p) => p.done), [false, false, true]);
    const seen = pages.flatMap((p) => p.data.map((d) => d.id));
    assert.deepEqual(seen, eps.map((e) => e.id).sort(), "every endpoint once, by id (the resent one too)");
    assert.ok(pages.flatMap((p) => p.data).every((d) => d.status === 0 && d.nextAttempt == null));
  });

  test("listAttemptedMessages: an endpoint's messages, newest first, with its latest delivery's state", async () => {
    const app = await svix.application.create({ name: "attempted-messages", uid: uniq("app") });
    const base = `/${uniq("attempted")}`;
    rx.respond(`${base}/bad`, [500]);
    const good = await svix.endpoint.create(app.id, { url: rx.url(`${base}/good`) });
    const bad = await svix.endpoint.create(app.id, { url: rx.url(`${base}/bad`), eventTypes: ["invoice.paid"] });
    const m1 = await svix.message.create(app.id, { eventType: "invoice.paid", payload: { n: 1 }, channels: ["eu"] });
    const m2 = await svix.message.create(app.id, { eventType: "user.created", payload: { n: 2 }, tags: ["t"] });
    for (const m of [m1, m2]) await settled(h, app.id, m.id);

    const list = (endpointId, options) => svix.messageAttempt.listAttemptedMessages(app.id, endpointId, options);
    const ids = async (endpointId, options) => (await list(endpointId, options)).data.map((m) => m.id);
    const atGood = await list(good.id, { withContent: true });
    assert.deepEqual(atGood.data.map((m) => m.id), [m2.id, m1.id], "newest first");
    assert.ok(atGood.data.every((m) => m.status === 0 && m.statusText === "success" && m.nextAttempt == null));
    assert.deepEqual(atGood.data[1].payload, { n: 1 }, "withContent carries payloads");
    assert.deepEqual((await list(good.id)).data[0].payload, {}, "the SDK's default leaves them out");
    const atBad = await list(bad.id);
    assert.deepEqual(atBad.data.map((m) => m.id), [m1.id], "only what was sent there");
    assert.equal(atBad.data[0].status, 2);
    assert.equal(atBad.data[0].statusText, "fail");

    assert.deepEqual(await ids(good.id, { status: 2 }), [], "status is the state at that endpoint");
    assert.deepEqual(await ids(bad.id, { status: 2 }), [m1.id]);
    assert.deepEqual(await ids(good.id, { eventTypes: ["invoice.paid"] }), [m1.id]);
    assert.deepEqual(await ids(good.id, { channel: "eu" }), [m1.id]);
    assert.deepEqual(await ids(good.id, { tag: "t" }), [m2.id]);
    const pages = await collectAll((iterator) => list(good.id, { limit: 1, iterator }));
    assert.deepEqual(pages.map((p) => p.data[0]?.id).filter(Boolean), [m2.id, m1.id], "one per page");
    await expectApiError(list("ep_doesnotexist"), 404, "not_found", "an unknown endpoint");
  });

  test("attempt routes on unknown message → 404", async () => {
    const app = await svix.application.create({ name: "attempts-404" });
    await expectApiError(
      svix.messageAttempt.listByMsg(app.id, "msg_doesnotexist"),
      404,
      "not_found",
      "attempts of unknown message",
    );
  });
});

describe("precheck", () => {
  test("active exactly when an enabled endpoint would take the message; it sends nothing", async () => {
    const app = await svix.application.create({ name: "precheck", uid: uniq("app") });
    const check = async (eventType, channels) =>
      (await svix.message.precheck(app.id, { eventType, ...(channels ? { channels } : {}) })).active;
    assert.equal(await check("user.created"), false, "no endpoint at all");

    const path = `/${uniq("precheck")}`;
    const typed = await svix.endpoint.create(app.id, {
      url: rx.url(path),
      eventTypes: ["invoice.paid"],
      channels: ["eu"],
    });
    assert.equal(await check("invoice.paid", ["eu"]), true, "type and channel match");
    assert.equal(await check("invoice.paid", ["us"]), false, "the channel does not");
    assert.equal(await check("invoice.paid"), false, "a message without channels skips a channel-filtered endpoint");
    assert.equal(await check("user.created", ["eu"]), false, "the type does not");

    await svix.endpoint.patch(app.id, typed.id, { disabled: true });
    assert.equal(await check("invoice.paid", ["eu"]), false, "a disabled endpoint takes nothing");
    await svix.endpoint.create(app.id, { url: rx.url(path) });
    assert.equal(await check("user.created"), true, "an endpoint without filters takes everything");

    assert.equal((await svix.message.list(app.id)).data.length, 0, "precheck creates no message");
    assert.equal(rx.requests(path).length, 0, "and sends nothing");
    for (const body of [{}, { eventType: "bad type!" }, { eventType: "a", channels: "eu" }]) {
      const res = await rawRequest(h, "POST", `/api/v1/app/${app.id}/msg/precheck/active`, { body });
      assert.equal(res.status, 422, `precheck ${JSON.stringify(body)}: ${res.status} ${res.text}`);
    }
    await expectApiError(svix.message.precheck("app_doesnotexist", { eventType: "a" }), 404, undefined, "an unknown app");
  });
});

describe("endpoint state affects delivery", () => {
  test("disabled endpoints receive nothing; re-enabled ones receive later messages", async () => {
    const app = await svix.application.create({ name: "disabled" });
    const base = `/${uniq("dis")}`;
    await svix.endpoint.create(app.id, { url: rx.url(`${base}/control`) });
    await svix.endpoint.create(app.id, { url: rx.url(`${base}/born-disabled`), disabled: true });
    const later = await svix.endpoint.create(app.id, { url: rx.url(`${base}/later`) });
    await svix.endpoint.patch(app.id, later.id, { disabled: true });

    const m1 = await svix.message.create(app.id, { eventType: "user.created", payload: { d: 1 } });
    await rx.waitFor(`${base}/control`, 1);
    assert.deepEqual(await settled(h, app.id, m1.id), { success: 1, pending: 0, sending: 0, fail: 0 }, "only the enabled endpoint");
    assert.equal(rx.requests(`${base}/born-disabled`).length, 0, "endpoint created disabled got a delivery");
    assert.equal(rx.requests(`${base}/later`).length, 0, "endpoint patched to disabled got a delivery");

    await svix.endpoint.patch(app.id, later.id, { disabled: false });
    const secret = (await svix.endpoint.getSecret(app.id, later.id)).key;
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload: { d: 2 } });
    const [r] = await rx.waitFor(`${base}/later`, 1);
    verifyDelivery(secret, r, { msgId: msg.id, payload: { d: 2 } });
  });

  test("after a url update, later messages go to the new url only", async () => {
    const app = await svix.application.create({ name: "moved" });
    const base = `/${uniq("mv")}`;
    const ep = await svix.endpoint.create(app.id, { url: rx.url(`${base}/old`) });
    const secret = (await svix.endpoint.getSecret(app.id, ep.id)).key;
    const m1 = await svix.message.create(app.id, { eventType: "user.created", payload: { v: 1 } });
    await rx.waitFor(`${base}/old`, 1);

    await svix.endpoint.upsert(app.id, ep.id, { url: rx.url(`${base}/new`) });
    const m2 = await svix.message.create(app.id, { eventType: "user.created", payload: { v: 2 } });
    const [r] = await rx.waitFor(`${base}/new`, 1);
    verifyDelivery(secret, r, { msgId: m2.id, payload: { v: 2 } });

    await svix.endpoint.patch(app.id, ep.id, { url: rx.url(`${base}/newer`) });
    const m3 = await svix.message.create(app.id, { eventType: "user.created", payload: { v: 3 } });
    const [r3] = await rx.waitFor(`${base}/newer`, 1);
    verifyDelivery(secret, r3, { msgId: m3.id, payload: { v: 3 } });
    for (const m of [m1, m2, m3]) assert.deepEqual(await settled(h, app.id, m.id), { success: 1, pending: 0, sending: 0, fail: 0 });
    assert.equal(rx.requests(`${base}/old`).length, 1, "old url must get nothing after the update");
    assert.equal(rx.requests(`${base}/new`).length, 1, "PUT url must get nothing after the PATCH");
  });

  test("a deleted endpoint gets nothing", async () => {
    const app = await svix.application.create({ name: "deleted-ep" });
    const base = `/${uniq("gone")}`;
    await svix.endpoint.create(app.id, { url: rx.url(`${base}/control`) });
    const doomed = await svix.endpoint.create(app.id, { url: rx.url(`${base}/doomed`) });
    await svix.endpoint.delete(app.id, doomed.id);
    const m = await svix.message.create(app.id, { eventType: "user.created", payload: { x: 1 } });
    await rx.waitFor(`${base}/control`, 1);
    assert.deepEqual(await settled(h, app.id, m.id), { success: 1, pending: 0, sending: 0, fail: 0 }, "only the control endpoint");
    assert.equal(rx.requests(`${base}/doomed`).length, 0, "deleted endpoint received a delivery");
  });
});

describe("retries", () => {
  test("5xx, 5xx, 200 → exactly 3 requests, same webhook-id, each validly signed", async () => {
    const { app, ep, path, secret } = await appWithEndpoint("retry");
    rx.respond(path, [500, 503, 200]);
    const payload = { retry: "me" };
    const msg = await svix.message.create(app.id, { eventType: "order.shipped", payload });
    const reqs = await rx.waitFor(path, 3, 5000);
    reqs.forEach((r, i) => verifyDelivery(secret, r, { msgId: msg.id, payload, what: `try ${i + 1}` }));
    assert.equal(new Set(reqs.map((r) => r.headers["webhook-id"])).size, 1, "same webhook-id on every retry");
    assert.ok(reqs[1].time - reqs[0].time >= 50, `retry 1 came ${reqs[1].time - reqs[0].time} ms after try 1 (schedule 100ms)`);
    assert.ok(reqs[2].time - reqs[1].time >= 100, `retry 2 came ${reqs[2].time - reqs[1].time} ms after retry 1 (schedule 200ms)`);

    const attempts = await eventually(
      async () => {
        const r = await svix.messageAttempt.listByMsg(app.id, msg.id);
        return r.data.length >= 3 && r.data.some((a) => a.status === 0) ? r.data : null;
      },
      { message: "3 recorded attempts including the success" },
    );
    assert.equal(attempts.length, 3, "three attempts recorded");
    assert.equal(attempts.filter((a) => a.status === 2).length, 2, "two failed attempts");
    assert.equal(attempts.filter((a) => a.status === 0).length, 1, "one successful attempt");
    assert.deepEqual(
      [...attempts].sort((a, b) => a.timestamp - b.timestamp).map((a) => a.responseStatusCode),
      [500, 503, 200],
      "attempt status codes in time order",
    );
    const newest = [...attempts].sort((a, b) => b.timestamp - a.timestamp)[0];
    assert.equal(newest.statusText, "success", "the final attempt is the success");
    assert.equal(attempts.every((a) => a.endpointId === ep.id), true);

    assert.deepEqual(await settled(h, app.id, msg.id), { success: 1, pending: 0, sending: 0, fail: 0 });
    assert.equal(rx.requests(path).length, 3, "no further tries after the success");
  });

  test("3xx is a failure and redirects are not followed", async () => {
    const { app, path } = await appWithEndpoint("redirect");
    const target = `${path}-target`;
    rx.respond(path, [{ status: 302, headers: { location: rx.url(target) } }, 200]);
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload: { r: 1 } });
    await rx.waitFor(path, 2, 5000);
    assert.deepEqual(await settled(h, app.id, msg.id), { success: 1, pending: 0, sending: 0, fail: 0 });
    assert.equal(rx.requests(target).length, 0, "the redirect target must never be called");
    const attempts = await eventually(
      async () => {
        const r = await svix.messageAttempt.listByMsg(app.id, msg.id);
        return r.data.length >= 2 ? r.data : null;
      },
      { message: "2 attempts" },
    );
    const first = [...attempts].sort((a, b) => a.timestamp - b.timestamp)[0];
    assert.equal(first.responseStatusCode, 302);
    assert.equal(first.status, 2, "a 3xx is recorded as a failure");
  });
});

describe("delivery semantics beyond the happy path", () => {
  test("410 Gone disables the endpoint at once, without retries", async () => {
    const { app, ep, path } = await appWithEndpoint("gone410");
    rx.respond(path, [410]);
    const g1 = await svix.message.create(app.id, { eventType: "user.created", payload: { g: 1 } });
    await rx.waitFor(path, 1);
    await eventually(async () => (await svix.endpoint.get(app.id, ep.id)).disabled === true, {
      message: "endpoint disabled after a 410",
    });
    const g2 = await svix.message.create(app.id, { eventType: "user.created", payload: { g: 2 } });
    assert.deepEqual(await settled(h, app.id, g1.id), { success: 0, pending: 0, sending: 0, fail: 1 }, "a 410 fails at once");
    assert.deepEqual(await settled(h, app.id, g2.id), { success: 0, pending: 0, sending: 0, fail: 0 }, "a disabled endpoint gets no delivery");
    assert.equal(rx.requests(path).length, 1, "410: no retry and nothing to the disabled endpoint");
  });

  test("a timeout is a failed attempt with responseStatusCode 0, then retried", async () => {
    const { app, path, secret } = await appWithEndpoint("timeout");
    rx.respond(path, [{ status: 200, delayMs: 2600 }, 200]); // HERALD_REQUEST_TIMEOUT=2s
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload: { slow: true } });
    const reqs = await rx.waitFor(path, 2, 6000);
    reqs.forEach((r, i) => verifyDelivery(secret, r, { msgId: msg.id, payload: { slow: true }, what: `try ${i + 1}` }));
    const attempts = await eventually(
      async () => {
        const r = await svix.messageAttempt.listByMsg(app.id, msg.id);
        return r.data.length >= 2 ? [...r.data].sort((a, b) => a.timestamp - b.timestamp) : null;
      },
      { message: "2 attempts (timeout + success)" },
    );
    assert.equal(attempts[0].responseStatusCode, 0, "a timed-out attempt records status code 0");
    assert.equal(attempts[0].status, 2, "a timed-out attempt is a failure");
    assert.ok(
      attempts[0].responseDurationMs >= 1500 && attempts[0].responseDurationMs < 2600,
      `timed-out attempt lasted ${attempts[0].responseDurationMs} ms; HERALD_REQUEST_TIMEOUT is 2s`,
    );
    assert.equal(attempts[1].status, 0);
  });

  test("Retry-After on 429 and 503 is honoured", async () => {
    const app = await svix.application.create({ name: "retryafter" });
    const base = `/${uniq("ra")}`;
    for (const code of [429, 503]) {
      rx.respond(`${base}/${code}`, [{ status: code, headers: { "retry-after": "1" } }, 200]);
      await svix.endpoint.create(app.id, { url: rx.url(`${base}/${code}`) });
    }
    await svix.message.create(app.id, { eventType: "user.created", payload: { ra: 1 } });
    const gaps = {};
    for (const code of [429, 503]) {
      const [r1, r2] = await rx.waitFor(`${base}/${code}`, 2, 5000);
      gaps[code] = r2.time - r1.time;
    }
    for (const code of [429, 503]) {
      assert.ok(
        gaps[code] >= 900,
        `${code} with Retry-After: 1 → retry came after ${gaps[code]} ms (429: ${gaps[429]} ms, 503: ${gaps[503]} ms); ` +
          "the schedule alone gives 100 ms",
      );
    }
  });

  test("manual resend re-delivers with the same webhook-id and triggerType 1", async () => {
    const { app, ep, path, secret } = await appWithEndpoint("resend");
    const payload = { resend: "me" };
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload });
    await rx.waitFor(path, 1);
    await eventually(async () => (await svix.messageAttempt.listByMsg(app.id, msg.id)).data.length === 1, {
      message: "first attempt recorded",
    });
    await svix.messageAttempt.resend(app.id, msg.id, ep.id);
    const [, r2] = await rx.waitFor(path, 2);
    verifyDelivery(secret, r2, { msgId: msg.id, payload, what: "resent delivery" });
    const attempts = await eventually(
      async () => {
        const r = await svix.messageAttempt.listByMsg(app.id, msg.id);
        return r.data.length >= 2 ? [...r.data].sort((a, b) => a.timestamp - b.timestamp) : null;
      },
      { message: "2 attempts after resend" },
    );
    assert.deepEqual(attempts.map((a) => a.triggerType), [0, 1], "scheduled then manual");
    assert.ok(attempts.every((a) => a.status === 0));
  });

  test("recover re-delivers messages that failed since a time", async () => {
    const { app, ep, path, secret } = await appWithEndpoint("recover");
    rx.respond(path, [500, 500, 500, 500, 200]);
    const payload = { recover: true };
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload });
    await rx.waitFor(path, 4, 5000);
    await eventually(
      async () => (await svix.messageAttempt.listByEndpoint(app.id, ep.id, { status: 2 })).data.length === 4,
      { message: "4 failed attempts recorded" },
    );
    assert.deepEqual(await settled(h, app.id, msg.id), { success: 0, pending: 0, sending: 0, fail: 1 });
    assert.equal(rx.requests(path).length, 4, "schedule exhausted after 4 tries");
    const out = await svix.endpoint.recover(app.id, ep.id, { since: new Date(Date.now() - 60_000) });
    assert.equal(typeof out?.id, "string", `recover returns a task {id,status,task,updatedAt}: ${JSON.stringify(out)}`);
    const reqs = await rx.waitFor(path, 5, 5000);
    verifyDelivery(secret, reqs[4], { msgId: msg.id, payload, what: "recovered delivery" });
  });

  test("endpoint stats count delivered and failed messages", async () => {
    const app = await svix.application.create({ name: "stats" });
    const base = `/${uniq("stats")}`;
    rx.respond(`${base}/bad`, [500]);
    const good = await svix.endpoint.create(app.id, { url: rx.url(`${base}/good`) });
    const bad = await svix.endpoint.create(app.id, { url: rx.url(`${base}/bad`) });
    await svix.message.create(app.id, { eventType: "user.created", payload: { s: 1 } });
    await svix.message.create(app.id, { eventType: "user.created", payload: { s: 2 } });
    await rx.waitFor(`${base}/good`, 2);
    await rx.waitFor(`${base}/bad`, 8, 5000);
    const goodStats = await eventually(
      async () => {
        const s = await svix.endpoint.getStats(app.id, good.id);
        return s.success === 2 ? s : null;
      },
      { message: "good endpoint stats success=2" },
    );
    assert.equal(goodStats.fail, 0);
    const badStats = await eventually(
      async () => {
        const s = await svix.endpoint.getStats(app.id, bad.id);
        return s.fail === 2 ? s : null;
      },
      { message: "failing endpoint stats fail=2" },
    );
    assert.equal(badStats.success, 0);

    // since/until: only the deliveries created in that window.
    const between = new Date();
    await new Promise((r) => setTimeout(r, 20));
    const third = await svix.message.create(app.id, { eventType: "user.created", payload: { s: 3 } });
    await settled(h, app.id, third.id);
    const end = new Date();
    const statsIn = async (options) => {
      const st = await svix.endpoint.getStats(app.id, good.id, options);
      return [st.success, st.fail, st.pending, st.sending];
    };
    assert.deepEqual(await statsIn({}), [3, 0, 0, 0]);
    assert.deepEqual(await statsIn({ since: between }), [1, 0, 0, 0], "since: only the third");
    assert.deepEqual(await statsIn({ until: between }), [2, 0, 0, 0], "until: the first two");
    assert.deepEqual(await statsIn({ since: between, until: end }), [1, 0, 0, 0]);
    assert.deepEqual(await statsIn({ since: end }), [0, 0, 0, 0]);
    const res = await rawRequest(h, "GET", `/api/v1/app/${app.id}/endpoint/${good.id}/stats?since=yesterday`);
    assert.equal(res.status, 422, res.text);
  });
});

describe("idempotency", () => {
  test("same idempotency-key → same message id, one delivery", async () => {
    const { app, path, secret } = await appWithEndpoint("idem-msg");
    const msgIn = { eventType: "user.created", payload: { idem: true } };
    const a = await svix.message.create(app.id, msgIn, { idempotencyKey: "k1" });
    const b = await svix.message.create(app.id, msgIn, { idempotencyKey: "k1" });
    assert.equal(b.id, a.id, "the replayed response must carry the first message's id");
    const [r] = await rx.waitFor(path, 1);
    verifyDelivery(secret, r, { msgId: a.id, payload: msgIn.payload });
    assert.deepEqual(await settled(h, app.id, a.id), { success: 1, pending: 0, sending: 0, fail: 0 });
    assert.equal(rx.requests(path).length, 1, "one delivery for two requests with the same key");
    assert.equal((await svix.message.list(app.id)).data.length, 1, "one stored message");

    const c = await svix.message.create(app.id, msgIn, { idempotencyKey: "k2" });
    assert.notEqual(c.id, a.id, "a different key is a different message");
  });

  test("same key on another app's path is a different request", async () => {
    const one = await appWithEndpoint("idem-a");
    const two = await appWithEndpoint("idem-b");
    const key = uniq("k");
    const a = await svix.message.create(one.app.id, { eventType: "user.created", payload: {} }, { idempotencyKey: key });
    const b = await svix.message.create(two.app.id, { eventType: "user.created", payload: {} }, { idempotencyKey: key });
    assert.notEqual(a.id, b.id, "idempotency is keyed by (token, key, path)");
    await rx.waitFor(one.path, 1);
    await rx.waitFor(two.path, 1);
  });
});

describe("uid addressing", () => {
  test("app uid works for endpoint create, message create/get/list and attempt lists", async () => {
    const appUid = uniq("uidapp");
    const app = await svix.application.create({ name: "uid-app", uid: appUid });
    const epUid = uniq("uidep");
    const path = `/${uniq("uid")}`;
    const ep = await svix.endpoint.create(appUid, { url: rx.url(path), uid: epUid });
    const { key } = await svix.endpoint.getSecret(appUid, epUid);
    const payload = { via: "uid" };
    const msg = await svix.message.create(appUid, { eventType: "user.created", payload });
    const [r] = await rx.waitFor(path, 1);
    verifyDelivery(key, r, { msgId: msg.id, payload });

    assert.equal((await svix.message.get(appUid, msg.id)).id, msg.id, "message get by app uid");
    assert.deepEqual((await svix.message.list(appUid)).data.map((m) => m.id), [msg.id], "message list by app uid");
    const byMsg = await eventually(
      async () => {
        const x = await svix.messageAttempt.listByMsg(appUid, msg.id);
        return x.data.length ? x : null;
      },
      { message: "attempt listed by app uid" },
    );
    assert.equal(byMsg.data[0].endpointId, ep.id);
    const byEpUid = await svix.messageAttempt.listByEndpoint(appUid, epUid);
    assert.equal(byEpUid.data.length, 1, "attempts by app uid + endpoint uid");
    assert.equal(byEpUid.data[0].msgId, msg.id);
    const byIds = await svix.messageAttempt.listByEndpoint(app.id, ep.id);
    assert.equal(byIds.data[0].id, byEpUid.data[0].id, "ids and uids address the same attempts");
  });
});

describe("payload bytes", () => {
  test("numbers are delivered exactly as the SDK serialised them", async () => {
    const { app, path, secret } = await appWithEndpoint("numbers");
    const payload = {
      nums: [0.1, 0.30000000000000004, 1e-7, 1.5e-10, 5e-324, 1.7976931348623157e308, 1e21, 1e20,
        2 ** 53 + 2, 123456789.123456789, -1e-300, 100, 123e-20],
      zeroes: { int: 0, neg: -5, big: 9007199254740991 },
    };
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload });
    const [r] = await rx.waitFor(path, 1);
    verifyDelivery(secret, r, { msgId: msg.id, payload });
    assert.equal(
      r.body,
      JSON.stringify(payload),
      "Svix delivers the payload bytes it was given; herald re-formatted numbers",
    );
  });
});

describe("large unicode payload", () => {
  test("~200 KB with emoji, CJK, accents and escapes is delivered byte-exact and verifies", async () => {
    const { app, path, secret } = await appWithEndpoint("big");
    const chunk = {
      emoji: "😀🎉🚀👩‍👩‍👧‍👦🏳️‍🌈",
      cjk: "漢字テスト한국어中文",
      accents: "éàüñçøåß Ångström naïve café",
      quotes: 'he said "hi" \\ back\\slash \'single\'',
      control: "tab\tnewline\nreturn\r nul-free \u2028\u2029 \u0001",
      html: "</script><b>&amp;</b>",
      numbers: [0, -1, 3.25, 1e21, 12345678901234],
    };
    const items = [];
    let size = 0;
    while (size < 200 * 1024) {
      const item = { i: items.length, ...chunk };
      items.push(item);
      size += Buffer.byteLength(JSON.stringify(item));
    }
    const payload = { kind: "big", items };
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload });
    const [r] = await rx.waitFor(path, 1, 10_000);
    assert.ok(r.rawBody.length >= 200 * 1024, `body is ${r.rawBody.length} bytes, expected ≥ 200 KiB`);
    verifyDelivery(secret, r, { msgId: msg.id, payload, what: "200 KB unicode delivery" });
    const sent = JSON.stringify(payload); // the exact bytes the SDK put in MessageIn.payload
    if (r.body !== sent) {
      let i = 0;
      while (i < sent.length && sent[i] === r.body[i]) i++;
      assert.fail(
        `the delivered body is not the payload as sent (Svix delivers the raw payload bytes): ` +
          `first difference at char ${i}: sent ${JSON.stringify(sent.slice(i, i + 40))}, ` +
          `delivered ${JSON.stringify(r.body.slice(i, i + 40))}`,
      );
    }
    const got = await svix.message.get(app.id, msg.id, { withContent: true });
    assert.deepEqual(got.payload, payload, "stored payload equals the submitted one");
  });
});
