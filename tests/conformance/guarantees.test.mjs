// Durability guarantees that need a process to die: kill -9 while messages are being accepted
// and delivered (nothing acknowledged is lost), and graceful shutdown on SIGTERM/SIGINT (in-flight
// attempts are drained and recorded, or put back uncounted when the drain time runs out).
//
// Each test starts its own herald, kills or stops it, and restarts it on the same database. On
// PostgreSQL too these are about one process and its restart, so each herald is a single node
// (`nodes: 1`); tests/cluster kills one node of two while the other carries on.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  collectAll,
  eventually,
  onSqlite,
  runHerald,
  startHerald,
  startReceiver,
  uniq,
  verifyDelivery,
} from "./harness.mjs";

/** Everything started by a test, stopped in after() even when the test failed midway. */
const cleanups = [];
after(async () => {
  const errors = [];
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch (e) {
      errors.push(e); // e.g. a herald that did not exit 0: reported once all are stopped
    }
  }
  if (errors.length) throw errors[0];
});

function track(h) {
  cleanups.push(() => h.stop());
  return h;
}

/** Wait for the process to exit; fail with the logs if it takes longer than `ms`. */
async function exitWithin(h, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const { stdout, stderr } = h.logs();
      reject(new Error(`${what}: herald still running ${ms} ms after the signal\n${stdout}\n${stderr}`));
    }, ms);
  });
  try {
    return await Promise.race([h.exitPromise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Attempts of `msgId`, oldest first. */
async function attemptsOf(svix, appId, msgId) {
  const r = await svix.messageAttempt.listByMsg(appId, msgId);
  return [...r.data].sort((a, b) => a.timestamp - b.timestamp);
}

describe("crash safety", () => {
  test("SIGKILL during a burst of message creates: every acknowledged message reaches every endpoint", async () => {
    const env = { HERALD_REQUEST_TIMEOUT: "1s", HERALD_LEASE: "2s" };
    const h1 = await startHerald({ env, nodes: 1 });
    cleanups.push(() => h1.stop({ keepDir: true }));
    const rx = await startReceiver();
    cleanups.push(() => rx.close());

    const app = await h1.svix.application.create({ name: "crash", uid: uniq("crash") });
    const base = `/${uniq("crash")}`;
    const endpoints = [];
    for (let i = 0; i < 3; i++) {
      const path = `${base}/ep${i}`;
      rx.respond(path, [() => ({ status: 200, delayMs: Math.floor(Math.random() * 51) })]);
      const ep = await h1.svix.endpoint.create(app.id, { url: rx.url(path) });
      const { key } = await h1.svix.endpoint.getSecret(app.id, ep.id);
      endpoints.push({ ep, path, secret: key });
    }

    // 400 creates from 20 workers; SIGKILL once 150 were acknowledged, with requests in flight.
    const TOTAL = 400;
    const WORKERS = 20;
    const KILL_AFTER = 150;
    const acked = new Map(); // msgId -> payload
    const refused = []; // non-202 HTTP answers (not network errors)
    let next = 0;
    let killed = false;
    let inFlightAtKill = 0;
    let inFlight = 0;
    const kill = () => {
      if (killed) return;
      killed = true;
      inFlightAtKill = inFlight;
      h1.proc.kill("SIGKILL");
    };
    const worker = async () => {
      while (next < TOTAL) {
        const n = next++;
        const payload = { n, crash: true };
        let res;
        inFlight++;
        try {
          res = await fetch(`${h1.url}/api/v1/app/${app.id}/msg`, {
            method: "POST",
            headers: { authorization: `Bearer ${h1.token}`, "content-type": "application/json" },
            body: JSON.stringify({ eventType: "crash.test", payload }),
          });
          const text = await res.text();
          if (res.status === 202) {
            acked.set(JSON.parse(text).id, payload);
            if (acked.size >= KILL_AFTER) kill();
          } else {
            refused.push(`${res.status} ${text.slice(0, 200)}`);
          }
        } catch {
          // connection refused/reset: herald is dead; this create was not acknowledged
          if (killed) return;
        } finally {
          inFlight--;
        }
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, worker));
    assert.ok(killed, `herald was never killed: only ${acked.size} creates acknowledged; refusals: ${refused.slice(0, 5)}`);
    assert.deepEqual(refused, [], "before the kill every create should get 202");
    const exit = await exitWithin(h1, 5000, "SIGKILL");
    assert.equal(exit.signal, "SIGKILL");
    const deliveredBeforeKill = rx.requests().length;

    // Restart on the same database (same admin token).
    const h2 = track(await startHerald({ env, nodes: 1, dbPath: h1.dbPath, token: h1.token }));
    const started = Date.now();
    const seen = (path) => new Set(rx.requests(path).map((r) => r.headers["webhook-id"]));
    try {
      await eventually(
        () => endpoints.every(({ path }) => [...acked.keys()].every((id) => seen(path).has(id))),
        { timeoutMs: 20_000, intervalMs: 200, message: "every acknowledged message at every endpoint" },
      );
    } catch {
      // fall through to the precise assertion below
    }
    const elapsed = Date.now() - started;

    const missing = [];
    let duplicates = 0;
    for (const { path } of endpoints) {
      const ids = seen(path);
      for (const id of acked.keys()) if (!ids.has(id)) missing.push(`${path} ${id}`);
      duplicates += rx.requests(path).length - ids.size;
    }
    const summary =
      `${acked.size} acknowledged, ${inFlightAtKill} creates in flight at the kill, ` +
      `${deliveredBeforeKill} requests received before the kill, ${rx.requests().length} in all, ` +
      `${duplicates} duplicate deliveries (allowed), all acknowledged delivered ${elapsed} ms after restart`;
    console.log(`crash safety: ${summary}`);
    assert.deepEqual(
      missing.slice(0, 20),
      [],
      `${missing.length} acknowledged (202) deliveries never arrived within 20 s of the restart; ${summary}`,
    );

    // Every arrival (acknowledged or not) is a valid, signed delivery of what was sent.
    for (const { path, secret } of endpoints) {
      for (const r of rx.requests(path)) {
        const id = r.headers["webhook-id"];
        verifyDelivery(secret, r, { payload: acked.get(id), what: `delivery of ${id} after the crash` });
      }
    }

    // The restarted herald agrees: every acknowledged message is listed, with what was sent.
    const pages = await collectAll((iterator) =>
      h2.svix.message.list(app.id, { iterator, limit: 250, withContent: true }),
    );
    const listed = pages.flatMap((p) => p.data);
    const byId = new Map(listed.map((m) => [m.id, m]));
    const unlisted = [...acked.keys()].filter((id) => !byId.has(id));
    assert.deepEqual(unlisted.slice(0, 20), [], `${unlisted.length} acknowledged messages are not listed`);
    for (const [id, payload] of acked) assert.deepEqual(byId.get(id).payload, payload, id);
    assert.equal(byId.size, listed.length, "each message is listed once");
  });
});

// SQLite only: a PostgreSQL database is meant to be shared, and its leases are the only way to
// tell a dead node's claims from a live one's (tests/cluster covers those).
describe("a SQLite database belongs to one process", { skip: !onSqlite && "a SQLite guarantee" }, () => {
  test("a second herald on the same file exits 2, naming the pid that holds it", async () => {
    const h1 = track(await startHerald({ nodes: 1 }));
    const r = await runHerald(["serve", "--listen", "127.0.0.1:0", "--db", h1.dbPath], {
      env: { HERALD_ADMIN_TOKEN: h1.token, HERALD_LOG_LEVEL: "warn" },
    });
    assert.equal(r.code, 2, `the second herald must not start (exit 2): ${r.stdout}${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
    assert.match(lines[0], new RegExp(`in use by another herald process \\(pid ${h1.proc.pid}\\)`));
    assert.doesNotMatch(r.stdout, /listening/);
    // The first one is untouched.
    await h1.svix.application.create({ name: "still here" });
  });

  test("after a kill -9, the delivery that was in flight is sent again at once, not after its lease", async () => {
    const env = { HERALD_LEASE: "1m" };
    const h1 = await startHerald({ env, nodes: 1 });
    cleanups.push(() => h1.stop({ keepDir: true }));
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    const app = await h1.svix.application.create({ name: "orphans" });
    const path = `/${uniq("orphan")}`;
    rx.respond(path, [{ status: 200, delayMs: 30_000 }, 200]); // the first attempt hangs
    await h1.svix.endpoint.create(app.id, { url: rx.url(path) });
    const msg = await h1.svix.message.create(app.id, { eventType: "orphan", payload: { n: 1 } });
    await rx.waitFor(path, 1);
    h1.proc.kill("SIGKILL");
    await exitWithin(h1, 5000, "SIGKILL");

    const restarted = Date.now();
    const h2 = track(await startHerald({ env, nodes: 1, dbPath: h1.dbPath, token: h1.token }));
    const [, again] = await rx.waitFor(path, 2, 10_000);
    const after = again.time - restarted;
    assert.equal(again.headers["webhook-id"], msg.id);
    assert.ok(after < 10_000, `sent again ${after} ms after the restart; the lease is 60 s`);
    await eventually(async () => (await attemptsOf(h2.svix, app.id, msg.id)).some((a) => a.status === 0), {
      message: "the second try recorded as a success",
    });
  });
});

describe("graceful shutdown", () => {
  test("SIGTERM waits for an attempt in flight and records it as a success", async () => {
    const env = { HERALD_LEASE: "3s" };
    const h1 = await startHerald({ env, nodes: 1 });
    cleanups.push(() => h1.stop({ keepDir: true }));
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    const app = await h1.svix.application.create({ name: "drain" });
    const path = `/${uniq("drain")}`;
    rx.respond(path, [{ status: 200, delayMs: 1500 }]);
    const ep = await h1.svix.endpoint.create(app.id, { url: rx.url(path) });
    const msg = await h1.svix.message.create(app.id, { eventType: "drain", payload: { drain: 1 } });
    await rx.waitFor(path, 1);

    const signalled = Date.now();
    h1.proc.kill("SIGTERM");
    const exit = await exitWithin(h1, 8000, "SIGTERM with a 1.5 s attempt in flight");
    const tookMs = Date.now() - signalled;
    assert.deepEqual(exit, { code: 0, signal: null }, `exit after SIGTERM: ${JSON.stringify(exit)}`);
    assert.ok(tookMs >= 1000, `herald exited ${tookMs} ms after SIGTERM: it did not wait for the 1.5 s attempt`);

    const h2 = track(await startHerald({ env, nodes: 1, dbPath: h1.dbPath, token: h1.token }));
    const attempts = await attemptsOf(h2.svix, app.id, msg.id);
    assert.equal(
      attempts.length,
      1,
      `after the drain: expected 1 recorded attempt, got ${JSON.stringify(attempts.map((a) => [a.status, a.responseStatusCode]))}`,
    );
    assert.equal(attempts[0].status, 0, "the drained attempt is recorded as a success");
    assert.equal(attempts[0].responseStatusCode, 200);
    assert.equal(attempts[0].endpointId, ep.id);
    // Recorded means done: the restarted herald does not deliver it again (lease 3 s).
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal(rx.requests(path).length, 1, "a drained, recorded delivery must not be sent again after restart");
  });

  test("HERALD_SHUTDOWN_TIMEOUT cuts the drain short; the aborted try is re-queued uncounted", async () => {
    const env = { HERALD_SHUTDOWN_TIMEOUT: "500ms", HERALD_REQUEST_TIMEOUT: "10s", HERALD_LEASE: "20s" };
    const h1 = await startHerald({ env, nodes: 1 });
    cleanups.push(() => h1.stop({ keepDir: true }));
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    const app = await h1.svix.application.create({ name: "cut" });
    const path = `/${uniq("cut")}`;
    rx.respond(path, [{ status: 200, delayMs: 5000 }, 200]);
    const ep = await h1.svix.endpoint.create(app.id, { url: rx.url(path) });
    const { key } = await h1.svix.endpoint.getSecret(app.id, ep.id);
    const payload = { cut: 1 };
    const msg = await h1.svix.message.create(app.id, { eventType: "cut", payload });
    await rx.waitFor(path, 1);

    const signalled = Date.now();
    h1.proc.kill("SIGTERM");
    const exit = await exitWithin(h1, 4000, "SIGTERM with HERALD_SHUTDOWN_TIMEOUT=500ms and a 5 s attempt");
    const tookMs = Date.now() - signalled;
    assert.deepEqual(exit, { code: 0, signal: null }, `exit after SIGTERM: ${JSON.stringify(exit)}`);
    assert.ok(tookMs <= 2000, `HERALD_SHUTDOWN_TIMEOUT=500ms, but herald took ${tookMs} ms to exit`);

    // The lease (20 s) has not lapsed: only a delivery put back as pending is sent at once.
    const h2 = track(await startHerald({ env, nodes: 1, dbPath: h1.dbPath, token: h1.token }));
    const reqs = await rx.waitFor(path, 2, 5000);
    verifyDelivery(key, reqs[1], { msgId: msg.id, payload, what: "retry after restart" });
    const attempts = await eventually(
      async () => {
        const a = await attemptsOf(h2.svix, app.id, msg.id);
        return a.some((x) => x.status === 0) ? a : null;
      },
      { message: "the retried delivery's success recorded" },
    );
    assert.deepEqual(
      attempts.map((a) => [a.status, a.responseStatusCode]),
      [[0, 200]],
      "the aborted try must not be recorded as an attempt (no failure), only the later success",
    );
  });

  test("SIGINT drains too and exits 0", async () => {
    const h1 = await startHerald({ nodes: 1 });
    cleanups.push(() => h1.stop({ keepDir: true }));
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    const app = await h1.svix.application.create({ name: "sigint" });
    const path = `/${uniq("sigint")}`;
    rx.respond(path, [{ status: 200, delayMs: 600 }]);
    await h1.svix.endpoint.create(app.id, { url: rx.url(path) });
    const msg = await h1.svix.message.create(app.id, { eventType: "sigint", payload: { i: 1 } });
    await rx.waitFor(path, 1);
    h1.proc.kill("SIGINT");
    const exit = await exitWithin(h1, 5000, "SIGINT");
    assert.deepEqual(exit, { code: 0, signal: null }, `exit after SIGINT: ${JSON.stringify(exit)}`);

    const h2 = track(await startHerald({ nodes: 1, dbPath: h1.dbPath, token: h1.token }));
    const attempts = await attemptsOf(h2.svix, app.id, msg.id);
    assert.deepEqual(
      attempts.map((a) => [a.status, a.responseStatusCode]),
      [[0, 200]],
      "the attempt in flight at SIGINT is recorded as a success",
    );
  });
});
