// Wake-up across processes: a message accepted by one node is picked up at once by another
// that has room, through LISTEN/NOTIFY, not at its next 1 s poll.
//
// Publishing alternately through two nodes would not show this: the accepting node wakes its
// own scheduler and delivers the message itself. So node A gets HERALD_MAX_IN_FLIGHT=1 and its
// one slot is taken by a request that hangs; every new message accepted by A must then be
// delivered by node B, which learns of it only from A's notification (or, without one, from
// its own poll, up to 1 s later). The attempts each node logs show who delivered.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";

import { ensureEventTypes, sleep, startHerald, startReceiver, uniq, verifyDelivery } from "../conformance/harness.mjs";
import { NEEDS_POSTGRES, attemptsLogged, percentile, publish } from "./support.mjs";

const cleanups = [];
after(async () => {
  const errors = [];
  for (const c of cleanups.reverse()) await c().catch((e) => errors.push(e));
  if (errors.length) throw errors[0];
});

describe("wake-up across processes", { skip: NEEDS_POSTGRES }, () => {
  test("a message accepted by a node with no room is delivered by the other within 200 ms (p99)", async () => {
    const rx = await startReceiver();
    // The hanging request keeps node A's slot until the receiver closes (before A stops).
    const env = { HERALD_REQUEST_TIMEOUT: "30s", HERALD_LEASE: "60s", HERALD_LOG_LEVEL: "debug" };
    const a = await startHerald({ nodes: 1, env: { ...env, HERALD_MAX_IN_FLIGHT: "1" }, logLimitBytes: 4 << 20 });
    cleanups.push(() => a.stop());
    cleanups.push(() => rx.close());
    const [nodeA] = a.nodes;

    await ensureEventTypes(a.svix, ["wake.hang", "wake.test"]);
    const app = await a.svix.application.create({ name: "wakeup", uid: uniq("wake") });
    const hang = `/${uniq("hang")}`;
    rx.respond(hang, [{ status: 200, delayMs: 120_000 }]);
    await a.svix.endpoint.create(app.id, { url: rx.url(hang), eventTypes: ["wake.hang"] });
    await a.svix.message.create(app.id, { eventType: "wake.hang", payload: { hang: true } });
    await rx.waitFor(hang, 1, 5000); // A's only slot is taken now
    const healthy = `/${uniq("healthy")}`;
    const ep = await a.svix.endpoint.create(app.id, { url: rx.url(healthy), eventTypes: ["wake.test"] });
    const { key } = await a.svix.endpoint.getSecret(app.id, ep.id);

    const b = await startHerald({ nodes: 1, dbPath: a.dbPath, token: a.token, env, logLimitBytes: 4 << 20 });
    cleanups.push(() => b.stop({ keepDir: true })); // stopped before A, which drops the database
    const [nodeB] = b.nodes;

    // 30 messages through A at irregular intervals (so none lines up with B's poll by design),
    // each waited for before the next.
    const N = 30;
    const latencies = [];
    for (let i = 0; i < N; i++) {
      const payload = { i };
      const r = await publish(nodeA, app.id, payload, { eventType: "wake.test" });
      assert.equal(r.status, 202, `create through A: ${r.status ?? r.error?.message} ${r.text ?? ""}`);
      const [req] = (await rx.waitFor(healthy, i + 1, 5000)).slice(i);
      verifyDelivery(key, req, { msgId: r.json.id, payload, what: `message ${i} accepted by A` });
      latencies.push(req.time - r.startedAt); // from sending the create: an upper bound
      await sleep(50 + Math.floor(Math.random() * 150));
    }
    await rx.waitFor(hang, 1);
    assert.equal(rx.requests(hang).length, 1, "the hanging request is still the only one to that endpoint");

    const byA = attemptsLogged(nodeA).filter((x) => x.endpointId === ep.id).length;
    const byB = attemptsLogged(nodeB).filter((x) => x.endpointId === ep.id).length;
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    console.log(
      `wake-up across nodes: ${N} messages accepted by A (its one slot hanging), delivered by B ` +
        `(attempts logged: A ${byA}, B ${byB}); from create to receipt p50 ${p50} ms, p99 ${p99} ms, ` +
        `all ${latencies.join(",")}`,
    );
    assert.equal(byA, 0, `node A, its only slot taken, delivered ${byA} of the messages itself`);
    assert.ok(
      p99 < 200,
      `from create (through A) to receipt (sent by B): p99 ${p99} ms, p50 ${p50} ms; B's poll alone ` +
        `would take up to 1 s: B was not woken by A's notification (latencies ${latencies.join(",")})`,
    );
  });
});
