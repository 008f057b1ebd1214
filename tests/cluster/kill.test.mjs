// kill -9 one of two nodes while both accept and deliver: every message acknowledged (202) by
// either node reaches every endpoint once the dead node's leases lapse, signed; the only
// duplicates are deliveries that were in flight on the killed node.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";

import { eventually, rawRequest, sleep, startHerald, startReceiver, uniq, verifyDelivery } from "../conformance/harness.mjs";
import { NEEDS_POSTGRES, attemptsLogged, publish } from "./support.mjs";

const LEASE_MS = 3000;
const REQUEST_TIMEOUT_MS = 1000;

const cleanups = [];
after(async () => {
  const errors = [];
  for (const c of cleanups.reverse()) await c().catch((e) => errors.push(e));
  if (errors.length) throw errors[0];
});

describe("kill -9 one of two nodes under load", { skip: NEEDS_POSTGRES }, () => {
  test("every acknowledged message reaches every endpoint; duplicates only from the killed node's flight", async () => {
    const h = await startHerald({
      env: {
        HERALD_LEASE: `${LEASE_MS}ms`,
        HERALD_REQUEST_TIMEOUT: `${REQUEST_TIMEOUT_MS}ms`,
        HERALD_LOG_LEVEL: "debug",
        // Room for every request the slow endpoint has open: this test is about the kill, and
        // tests/cluster/limits.test.mjs about the cap.
        HERALD_ENDPOINT_CONCURRENCY: "128",
      },
      logLimitBytes: 4 << 20, // every attempt's log line, to tell which node sent what
    });
    cleanups.push(() => h.stop());
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    const [survivor, victim] = h.nodes;

    const app = await h.svix.application.create({ name: "kill", uid: uniq("kill") });
    const base = `/${uniq("kill")}`;
    const endpoints = [];
    // The third endpoint holds every request until the kill (then answers in 0-50 ms), so the
    // node killed surely has requests in flight whose results die with it.
    let killed;
    const killedYet = new Promise((resolve) => (killed = resolve));
    for (let i = 0; i < 3; i++) {
      const p = `${base}/ep${i}`;
      const hold = i === 2;
      rx.respond(p, [
        async () => {
          if (hold) await killedYet;
          return { status: 200, delayMs: Math.floor(Math.random() * 51) };
        },
      ]);
      const ep = await h.svix.endpoint.create(app.id, { url: rx.url(p) });
      const { key } = await h.svix.endpoint.getSecret(app.id, ep.id);
      endpoints.push({ ep, path: p, secret: key });
    }

    // 400 creates from 8 workers, alternating between the nodes; SIGKILL the second node once
    // 150 were acknowledged and its /metrics shows requests in flight (creates are in flight
    // too). After the kill every create goes to the survivor.
    const TOTAL = 400;
    const WORKERS = 8;
    const KILL_AFTER = 150;
    const acked = new Map(); // msgId -> {payload, node}
    const unexpected = []; // anything but a 202, or an error from a live node
    let notAcked = 0; // creates the kill cut off (connection reset or refused)
    let next = 0;
    let killAt = null;
    let inFlightAtKill = 0;
    let victimInFlight = 0; // its herald_deliveries_in_flight just before the kill
    let inFlight = 0;
    let killing = null;
    const kill = async () => {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const m = await rawRequest(victim, "GET", "/metrics", { token: null });
        victimInFlight = Number(/^herald_deliveries_in_flight (\S+)$/m.exec(m.text)?.[1] ?? 0);
        if (victimInFlight >= 2) break;
        await sleep(5);
      }
      killAt = Date.now();
      inFlightAtKill = inFlight;
      victim.kill("SIGKILL");
      await victim.exitPromise;
      killed();
    };
    const worker = async () => {
      while (next < TOTAL) {
        const n = next++;
        const target = killAt !== null ? survivor : h.nodes[n % 2];
        const payload = { n, kill: true };
        inFlight++;
        const r = await publish(target, app.id, payload, { eventType: "kill.test" });
        inFlight--;
        if (r.status === 202) {
          acked.set(r.json.id, { payload, node: target.name });
          if (acked.size >= KILL_AFTER) killing ??= kill();
        } else if (r.error && target === victim && killing) {
          notAcked++;
        } else {
          unexpected.push(`${target.name}: ${r.status ?? ""} ${r.error?.message ?? r.text?.slice(0, 200)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, worker));
    await killing;
    assert.ok(killAt !== null, `the node was never killed: ${acked.size} creates acknowledged`);
    assert.deepEqual(unexpected, [], "every create answered by a live node is a 202");
    const exit = await victim.exitPromise;
    assert.equal(exit.signal, "SIGKILL");
    const deliveredBeforeKill = rx.requests().filter((r) => r.time <= killAt).length;

    const seen = (p) => new Set(rx.requests(p).map((r) => r.headers["webhook-id"]));
    const missing = () =>
      endpoints.flatMap(({ path: p }) => {
        const ids = seen(p);
        return [...acked.keys()].filter((id) => !ids.has(id)).map((id) => `${p} ${id}`);
      });
    await eventually(() => missing().length === 0, {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: "every acknowledged message at every endpoint",
    }).catch(() => {});
    // Then until nothing is left to send: the killed node's leases lapse and the survivor sends
    // what they held again. Until they lapse its deliveries count as being sent, not pending
    // (nobody can tell a dead node from a slow one), so first wait out the lease.
    await sleep(Math.max(0, killAt + LEASE_MS + 500 - Date.now()));
    const gauge = async (name) => {
      const m = await rawRequest(survivor, "GET", "/metrics", { token: null });
      return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(m.text)?.[1]);
    };
    await eventually(
      async () => (await gauge("herald_deliveries_pending")) === 0 && (await gauge("herald_deliveries_in_flight")) === 0,
      { timeoutMs: 30_000, intervalMs: 100, message: "nothing pending or in flight on the survivor" },
    );
    const lastArrival = Math.max(...rx.requests().map((r) => r.time));

    // A delivery sent more than once must be explained by what herald recorded: exactly one
    // recorded success, any other recorded attempt a failure (a timeout when this busy process
    // answered late: retried by the schedule), and at most one send with no recorded attempt at
    // all. Such a send was in flight on the killed node: its result died with it, and the
    // survivor sent it again once the lease lapsed (so the last send comes at least lease -
    // request timeout after the kill). The receiver's clock is no judge of who sent first: under
    // load this process reads requests the killed node wrote before it died much later.
    let duplicates = 0;
    let unrecorded = 0; // sends in flight on the killed node
    let retried = 0; // sends after a recorded failure
    const unexplained = [];
    for (const { ep, path: p } of endpoints) {
      const byId = new Map();
      for (const r of rx.requests(p)) {
        const id = r.headers["webhook-id"];
        byId.set(id, [...(byId.get(id) ?? []), r]);
      }
      for (const [id, reqs] of byId) {
        if (reqs.length < 2) continue;
        duplicates += reqs.length - 1;
        const attempts = (await survivor.svix.messageAttempt.listByMsg(app.id, id, { endpointId: ep.id })).data;
        const successes = attempts.filter((a) => a.status === 0).length;
        const extra = reqs.length - attempts.length;
        const why = [];
        if (successes !== 1) why.push(`${successes} recorded successes`);
        if (extra > 1) why.push(`${extra} sends with no recorded attempt`);
        if (extra < 0) why.push(`more recorded attempts (${attempts.length}) than sends`);
        if (extra === 1 && reqs.at(-1).time < killAt + LEASE_MS - REQUEST_TIMEOUT_MS - 1000) {
          why.push("sent again before the killed node's lease can have lapsed");
        }
        if (why.length) {
          unexplained.push(
            `${p} ${id}: ${why.join(", ")}; sends at ${reqs.map((r) => `+${r.time - killAt}`).join(", ")} ms from the kill; ` +
              `recorded ${attempts.map((a) => `${a.responseStatusCode} at +${a.timestamp.getTime() - killAt} ms`).join(", ")}`,
          );
        }
        unrecorded += Math.max(0, extra);
        retried += attempts.length - successes;
      }
    }
    const survivorLog = attemptsLogged(survivor);
    const victimLog = attemptsLogged(victim);
    const summary =
      `${acked.size} acknowledged (${[...acked.values()].filter((a) => a.node === victim.name).length} by the killed node), ` +
      `${notAcked} creates cut off by the kill, ${inFlightAtKill} in flight at it, ${victimInFlight} deliveries in flight ` +
      `on the node just before; ` +
      `${deliveredBeforeKill} requests received before the kill, ${rx.requests().length} in all, ` +
      `${duplicates} repeated sends (${unrecorded} in flight on the killed node, ${retried} retries after a ` +
      `recorded failure); the last arrived ` +
      `${lastArrival - killAt} ms after the kill (lease ${LEASE_MS} ms); attempts logged: ` +
      `${survivorLog.length} by the survivor, ${victimLog.length} by the killed node before it died`;
    console.log(`kill -9: ${summary}`);
    const lost = missing();
    assert.deepEqual(lost.slice(0, 20), [], `${lost.length} acknowledged deliveries never arrived within 30 s; ${summary}`);
    assert.deepEqual(unexplained.slice(0, 20), [], `duplicates that were not in flight on the killed node; ${summary}`);
    assert.ok(unrecorded > 0, `the kill found no request in flight on the node: no lease was taken over; ${summary}`);

    // Every arrival is a valid, signed delivery of what was sent (acknowledged or not).
    for (const { path: p, secret } of endpoints) {
      for (const r of rx.requests(p)) {
        const id = r.headers["webhook-id"];
        const body = verifyDelivery(secret, r, { payload: acked.get(id)?.payload, what: `delivery of ${id}` });
        assert.ok(body.kill === true && body.n >= 0 && body.n < TOTAL, `a payload that was sent: ${r.body}`);
      }
    }

    // The survivor serves what the dead node acknowledged.
    const fromVictim = [...acked].find(([, a]) => a.node === victim.name);
    assert.ok(fromVictim, "the killed node acknowledged some messages");
    const got = await survivor.svix.message.get(app.id, fromVictim[0], { withContent: true });
    assert.deepEqual(got.payload, fromVictim[1].payload);
    assert.equal(survivor.exited(), null, "the survivor is still running");
  });
});
