// Background tasks (recover, replay-missing, bulk-replay, expunge-all-contents, usage stats) and
// expunging, through the svix SDK: each task is polled with backgroundTask.get until it ends,
// what it sent is checked on the loopback receiver, and a task cut short by kill -9 ends after
// the next start.
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  Svix,
  eventually,
  expectApiError,
  instrumentSvix,
  onPostgres,
  psql,
  rawRequest,
  settled,
  sleep,
  startHerald,
  startReceiver,
  uniq,
  verifyDelivery,
} from "./harness.mjs";

let h;
let rx;
let svix;
const cleanups = [];

before(async () => {
  h = await startHerald({ retrySchedule: "600ms,600ms" });
  svix = h.svix;
  rx = await startReceiver();
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await h?.stop();
  await rx?.close();
});

/** Polls the task until it is no longer running; returns it. */
async function finished(client, id, { timeoutMs = 10_000 } = {}) {
  return eventually(
    async () => {
      const t = await client.backgroundTask.get(id);
      return t.status === "running" ? null : t;
    },
    { timeoutMs, message: `background task ${id} to end` },
  );
}

/** The webhook-ids of the requests `path` received. */
const idsOn = (path) => rx.requests(path).map((r) => r.headers["webhook-id"]);

async function appWithEndpoint(name, endpointIn = {}) {
  const app = await svix.application.create({ name, uid: uniq("app") });
  const path = `/${uniq(name)}`;
  const ep = await svix.endpoint.create(app.id, { url: rx.url(path), ...endpointIn });
  const { key } = await svix.endpoint.getSecret(app.id, ep.id);
  return { app, ep, path, secret: key };
}

describe("background tasks", () => {
  test("recover is a task: polled until finished, it reports messagesSent and is listed", async () => {
    const { app, ep, path, secret } = await appWithEndpoint("task-recover");
    rx.respond(path, [500, 500, 500, 200]);
    const payload = { recover: "task" };
    const msg = await svix.message.create(app.id, { eventType: "x", payload });
    assert.deepEqual(await settled(h, app.id, msg.id), { success: 0, pending: 0, sending: 0, fail: 1 });

    const out = await svix.endpoint.recover(app.id, ep.id, { since: new Date(Date.now() - 60_000) });
    assert.ok(out.id.startsWith("qtask_"), `a task id: ${JSON.stringify(out)}`);
    assert.equal(out.task, "endpoint.recover");
    assert.ok(["running", "finished"].includes(out.status));
    const done = await finished(svix, out.id);
    assert.equal(done.status, "finished");
    assert.deepEqual(done.data, { messagesSent: 1 });
    assert.ok(done.updatedAt instanceof Date && !Number.isNaN(done.updatedAt.getTime()));
    const reqs = await rx.waitFor(path, 4);
    verifyDelivery(secret, reqs[3], { msgId: msg.id, payload, what: "recovered delivery" });

    const listed = await svix.backgroundTask.list({ task: "endpoint.recover", status: "finished", limit: 250 });
    assert.ok(listed.data.some((t) => t.id === out.id), "listed under its kind and status");
    const running = await svix.backgroundTask.list({ status: "running", limit: 250 });
    assert.ok(!running.data.some((t) => t.id === out.id), "not listed as running");
  });

  test("an application's token sees its own application's tasks only", async () => {
    const mine = await appWithEndpoint("task-mine");
    const theirs = await appWithEndpoint("task-theirs");
    const a = await svix.endpoint.recover(mine.app.id, mine.ep.id, { since: new Date(Date.now() - 1000) });
    const b = await svix.endpoint.recover(theirs.app.id, theirs.ep.id, { since: new Date(Date.now() - 1000) });
    const stats = await svix.statistics.aggregateEventTypes();
    const access = await svix.authentication.appPortalAccess(mine.app.id, {});
    const scoped = instrumentSvix(new Svix(access.token, { serverUrl: h.url }));
    assert.equal((await scoped.backgroundTask.get(a.id)).id, a.id);
    await expectApiError(scoped.backgroundTask.get(b.id), 404, "not_found", "another app's task");
    await expectApiError(scoped.backgroundTask.get(stats.id), 404, "not_found", "an admin task");
    const seen = (await scoped.backgroundTask.list({ limit: 250 })).data.map((t) => t.id);
    assert.deepEqual(seen, [a.id], "the list holds its own task only");
    await expectApiError(scoped.statistics.aggregateEventTypes(), 404, "not_found", "stats are admin's");
    await finished(svix, stats.id);
  });

  test("list pages newest first, and bad filters are 422", async () => {
    const { app, ep } = await appWithEndpoint("task-pages");
    const made = [];
    for (let i = 0; i < 3; i++) {
      made.push((await svix.endpoint.recover(app.id, ep.id, { since: new Date(Date.now() - 1000) })).id);
      await sleep(5); // ids sort by their millisecond, across the nodes of a cluster too
    }
    const first = await svix.backgroundTask.list({ limit: 2 });
    assert.equal(first.data.length, 2);
    assert.equal(first.done, false);
    assert.deepEqual(first.data.map((t) => t.id), [made[2], made[1]], "newest first");
    const second = await svix.backgroundTask.list({ limit: 2, iterator: first.iterator });
    assert.equal(second.data[0].id, made[0]);
    let r = await rawRequest(h, "GET", "/api/v1/background-task?status=done");
    assert.equal(r.status, 422, r.text);
    r = await rawRequest(h, "GET", "/api/v1/background-task?task=nope");
    assert.equal(r.status, 422, r.text);
    await expectApiError(svix.backgroundTask.get("qtask_nope"), 404, "not_found");
  });

  test("replay-missing sends the messages the endpoint's filters take and it never got, once", async () => {
    const app = await svix.application.create({ name: "replay-missing" });
    const since = new Date(Date.now() - 1000);
    const a1 = await svix.message.create(app.id, { eventType: "a.one", payload: { n: 1 } });
    const b = await svix.message.create(app.id, { eventType: "b.two", payload: { n: 2 } });
    const a2 = await svix.message.create(app.id, { eventType: "a.one", payload: { n: 3 } });
    const path = `/${uniq("missing")}`;
    const ep = await svix.endpoint.create(app.id, { url: rx.url(path), eventTypes: ["a.one"] });
    const { key } = await svix.endpoint.getSecret(app.id, ep.id);
    const later = await svix.message.create(app.id, { eventType: "a.one", payload: { n: 4 } });
    await rx.waitFor(path, 1);

    const out = await svix.endpoint.replayMissing(app.id, ep.id, { since });
    assert.equal(out.task, "endpoint.replay");
    const done = await finished(svix, out.id);
    assert.deepEqual(done.data, { messagesSent: 2 });
    const reqs = await rx.waitFor(path, 3);
    assert.deepEqual(new Set(idsOn(path)), new Set([later.id, a1.id, a2.id]), `not ${b.id}`);
    verifyDelivery(key, reqs.find((r) => r.headers["webhook-id"] === a1.id), {
      msgId: a1.id,
      payload: { n: 1 },
      what: "replayed delivery",
    });
    // Again: nothing is missing now.
    for (const m of [a1, a2]) await settled(h, app.id, m.id);
    const again = await finished(svix, (await svix.endpoint.replayMissing(app.id, ep.id, { since })).id);
    assert.deepEqual(again.data, { messagesSent: 0 });
    assert.equal(rx.requests(path).length, 3);
  });

  test("bulk-replay sends again the endpoint's messages that match its filters", async () => {
    const { app, ep, path } = await appWithEndpoint("bulk-replay");
    const since = new Date(Date.now() - 1000);
    const x = await svix.message.create(app.id, { eventType: "x.kind", payload: { n: 1 }, tags: ["keep"] });
    const y = await svix.message.create(app.id, { eventType: "y.kind", payload: { n: 2 } });
    await rx.waitFor(path, 2);
    for (const m of [x, y]) await settled(h, app.id, m.id);

    const byType = await finished(
      svix,
      (await svix.endpoint.bulkReplay(app.id, ep.id, { since, eventTypes: ["x.kind"] })).id,
    );
    assert.equal(byType.task, "endpoint.bulk-replay");
    assert.deepEqual(byType.data, { messagesSent: 1 });
    await rx.waitFor(path, 3);
    assert.equal(idsOn(path)[2], x.id);
    await settled(h, app.id, x.id);

    const all = await finished(svix, (await svix.endpoint.bulkReplay(app.id, ep.id, { since, status: 0 })).id);
    assert.deepEqual(all.data, { messagesSent: 2 }, "successful messages replay too");
    await rx.waitFor(path, 5);
    const none = await finished(svix, (await svix.endpoint.bulkReplay(app.id, ep.id, { since, tag: "none" })).id);
    assert.deepEqual(none.data, { messagesSent: 0 });

    const before = (await svix.backgroundTask.list({ limit: 250 })).data.length;
    for (const bad of [{ statusCodeClass: 150 }, { status: 7 }, { until: new Date(since.getTime() - 1) }]) {
      const r = await rawRequest(h, "POST", `/api/v1/app/${app.id}/endpoint/${ep.id}/bulk-replay`, {
        body: { since: since.toISOString(), ...bad },
      });
      assert.equal(r.status, 422, `${JSON.stringify(bad)}: ${r.text}`);
    }
    const r = await rawRequest(h, "POST", `/api/v1/app/${app.id}/endpoint/${ep.id}/replay-missing`, { body: {} });
    assert.equal(r.status, 422, `since is required: ${r.text}`);
    assert.equal((await svix.backgroundTask.list({ limit: 250 })).data.length, before, "no task was made");
  });
});

describe("expunging", () => {
  test("a message's content: it reads as expired, and its retry is never sent", async () => {
    const { app, ep, path } = await appWithEndpoint("expunge");
    rx.respond(path, [500, 200]);
    const msg = await svix.message.create(app.id, { eventType: "x", payload: { secret: "oops" } });
    await rx.waitFor(path, 1);
    await svix.message.expungeContent(app.id, msg.id);
    const read = await rawRequest(h, "GET", `/api/v1/app/${app.id}/msg/${msg.id}`);
    assert.equal(read.json.payloadExpired, true, read.text);
    assert.deepEqual(read.json.payload, {});
    assert.deepEqual(await settled(h, app.id, msg.id), { success: 0, pending: 0, sending: 0, fail: 1 });
    await sleep(1500); // past the retry that would have come
    assert.equal(rx.requests(path).length, 1, "the retry of an expunged message is not sent");
    // Recover and replays leave it out.
    const rec = await finished(svix, (await svix.endpoint.recover(app.id, ep.id, { since: new Date(0) })).id);
    assert.deepEqual(rec.data, { messagesSent: 0 });
    await expectApiError(svix.message.expungeContent(app.id, "msg_nope"), 404, "not_found");
  });

  test("bulk-expunge says per id whether it was expunged", async () => {
    const app = await svix.application.create({ name: "bulk-expunge" });
    const eventId = uniq("evt");
    const m1 = await svix.message.create(app.id, { eventType: "x", payload: { n: 1 } });
    const m2 = await svix.message.create(app.id, { eventType: "x", payload: { n: 2 }, eventId });
    const keep = await svix.message.create(app.id, { eventType: "x", payload: { n: 3 } });
    const out = await svix.message.bulkExpungeContent(app.id, { ids: [m1.id, eventId, "msg_missing"] });
    assert.deepEqual(out.results, { [m1.id]: "expunged", [eventId]: "expunged", msg_missing: "not-found" });
    for (const m of [m1, m2]) {
      assert.equal((await rawRequest(h, "GET", `/api/v1/app/${app.id}/msg/${m.id}`)).json.payloadExpired, true);
    }
    assert.deepEqual((await svix.message.get(app.id, keep.id, { withContent: true })).payload, { n: 3 });
    const r = await rawRequest(h, "POST", `/api/v1/app/${app.id}/msg/bulk-expunge`, { body: { ids: "x" } });
    assert.equal(r.status, 422, r.text);
  });

  test("expunge-all-contents is a task that purges every payload of the application", async () => {
    const app = await svix.application.create({ name: "expunge-all" });
    const other = await svix.application.create({ name: "expunge-other" });
    const ms = [];
    for (let i = 0; i < 3; i++) ms.push(await svix.message.create(app.id, { eventType: "x", payload: { i } }));
    const kept = await svix.message.create(other.id, { eventType: "x", payload: { kept: true } });
    const out = await svix.message.expungeAllContents(app.id);
    assert.equal(out.task, "application.purge_content");
    const done = await finished(svix, out.id);
    assert.deepEqual(done.data, { messagesPurged: 3 });
    for (const m of ms) {
      assert.equal((await rawRequest(h, "GET", `/api/v1/app/${app.id}/msg/${m.id}`)).json.payloadExpired, true);
    }
    assert.deepEqual((await svix.message.get(other.id, kept.id, { withContent: true })).payload, { kept: true });
  });

  test("an attempt's response content", async () => {
    const { app, path } = await appWithEndpoint("expunge-attempt");
    rx.respond(path, [{ status: 200, body: "private reply" }]);
    const msg = await svix.message.create(app.id, { eventType: "x", payload: { n: 1 } });
    await settled(h, app.id, msg.id);
    const [a] = (await svix.messageAttempt.listByMsg(app.id, msg.id, { withContent: true })).data;
    assert.equal(a.response, "private reply");
    await svix.messageAttempt.expungeContent(app.id, msg.id, a.id);
    const read = await rawRequest(h, "GET", `/api/v1/app/${app.id}/msg/${msg.id}/attempt/${a.id}`);
    assert.equal(read.json.response, "", read.text);
    assert.equal(read.json.responseExpunged, true);
    await expectApiError(svix.messageAttempt.expungeContent(app.id, msg.id, "atmpt_nope"), 404, "not_found");
  });
});

describe("usage statistics", () => {
  test("aggregateAppStats counts messages and destinations; unknown apps are named", async () => {
    const { app } = await appWithEndpoint("stats-app");
    await svix.endpoint.create(app.id, { url: rx.url(`/${uniq("second")}`) });
    const since = new Date(Date.now() - 1000);
    for (let i = 0; i < 2; i++) await svix.message.create(app.id, { eventType: "x", payload: { i } });
    const out = await svix.statistics.aggregateAppStats({
      since,
      until: new Date(Date.now() + 1000),
      appIds: [app.uid, "no-such-app"],
    });
    assert.deepEqual(out.unresolvedAppIds, ["no-such-app"]);
    assert.equal(out.task, "application.stats");
    const done = await finished(svix, out.id);
    assert.deepEqual(done.data.appStats, [{ messageDestinations: 4, appId: app.id, appUid: app.uid, messages: 2 }]);

    await expectApiError(
      svix.statistics.aggregateAppStats({ since, until: new Date(), appIds: ["no-such-app"] }),
      422,
      undefined,
      "none resolves",
    );
    await expectApiError(svix.statistics.aggregateAppStats({ since, until: since }), 422, undefined, "empty window");
  });

  test("aggregateEventTypes lists each application's subscribed event types", async () => {
    const { app } = await appWithEndpoint("stats-types", { eventTypes: ["b.type", "a.type"] });
    const done = await finished(svix, (await svix.statistics.aggregateEventTypes()).id);
    assert.equal(done.task, "event-type.aggregate");
    const mine = done.data.event_types.find((e) => e.appId === app.id);
    assert.deepEqual(mine, { appId: app.id, explicitlySubscribedEventTypes: ["a.type", "b.type"], hasCatchAllEndpoint: false });
  });
});

/** Runs SQL on the store herald `x` used (stopped). */
function sqlOn(x, sql) {
  if (onPostgres) return psql(sql, { uri: x.dbPath });
  return new Promise((resolve, reject) =>
    execFile("sqlite3", [x.dbPath, sql], (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))),
  );
}

describe("restarts", () => {
  test("a task cut short by kill -9 ends after the next start, resuming where it got to", async () => {
    const h1 = await startHerald({ nodes: 1, env: { HERALD_LEASE: "5s" } });
    cleanups.push(() => h1.stop({ keepDir: true, check: false }));
    const app = await h1.svix.application.create({ name: "task-restart" });
    const ms = [];
    for (let i = 0; i < 3; i++) ms.push(await h1.svix.message.create(app.id, { eventType: "x", payload: { i } }));
    const path = `/${uniq("restart")}`;
    const ep = await h1.svix.endpoint.create(app.id, { url: rx.url(path) });
    // What the task's first step did before the kill: the newest message went out.
    await h1.svix.messageAttempt.resend(app.id, ms[2].id, ep.id);
    await rx.waitFor(path, 1);
    await settled(h1, app.id, ms[2].id);
    h1.proc.kill("SIGKILL");
    await h1.exitPromise;
    // And the row it left: running, one step done, leased by the process that died.
    const now = Date.now();
    const id = `qtask_${"0".repeat(22)}`;
    const params = JSON.stringify({ endpointId: ep.id, since: now - 60_000, until: now });
    await sqlOn(
      h1,
      "INSERT INTO background_tasks (id, app_id, kind, status, params, state, data, claim, lease_until, " +
        `created_at, updated_at) VALUES ('${id}', '${app.id}', 'endpoint.replay', 0, '${params}', ` +
        `'{"cursor":"${ms[2].id}"}', '{"messagesSent":1}', 42, ${now + 3000}, ${now}, ${now})`,
    );

    const h2 = await startHerald({ nodes: 1, dbPath: h1.dbPath, token: h1.token, env: { HERALD_LEASE: "5s" } });
    cleanups.push(() => h2.stop());
    const done = await finished(h2.svix, id, { timeoutMs: 15_000 });
    assert.equal(done.status, "finished");
    assert.deepEqual(done.data, { messagesSent: 3 });
    await rx.waitFor(path, 3);
    for (const m of ms) await settled(h2, app.id, m.id);
    assert.deepEqual(idsOn(path).sort(), ms.map((m) => m.id).sort(), "each message once: none twice");
  });
});
