// Per-endpoint limits hold across the cluster, measured at the receiver: HERALD_ENDPOINT_CONCURRENCY
// caps the requests open to one endpoint from all nodes together, and an endpoint's
// throttleRate is one token bucket for all nodes. Each test is built so that a per-process
// limit (what each node alone would enforce) fails it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { eventually, startHerald, startReceiver, uniq, verifyDelivery } from "../conformance/harness.mjs";
import { NEEDS_POSTGRES, attemptsLogged, maxInWindow, pooled } from "./support.mjs";

/**
 * How many attempts to `endpointId` each node logged, once they add up to `n` (a result is
 * logged when it is recorded, just after the receiver answered).
 */
async function attemptsByNode(h, endpointId, n) {
  let byNode;
  await eventually(
    () => {
      byNode = h.nodes.map((node) => attemptsLogged(node).filter((a) => a.endpointId === endpointId).length);
      return byNode[0] + byNode[1] >= n;
    },
    { timeoutMs: 5000, message: `${n} attempts logged` },
  ).catch(() => {});
  return byNode;
}

describe("HERALD_ENDPOINT_CONCURRENCY across two nodes", { skip: NEEDS_POSTGRES }, () => {
  // Each node may have at most 2 attempts in flight in all (HERALD_MAX_IN_FLIGHT), and each
  // endpoint at most 3 from the whole cluster. So one node alone can never hold 3 requests open,
  // the two together can hold 4, and only a cap shared by the nodes keeps one endpoint at 3:
  // with a per-process cap each node would keep min(3, 2) = 2 open to it, 4 in all.
  const CAP = 3;
  const PER_NODE = 2;
  const HOLD_MS = 150;
  let h;
  let rx;
  before(async () => {
    rx = await startReceiver();
    h = await startHerald({
      env: {
        HERALD_ENDPOINT_CONCURRENCY: String(CAP),
        HERALD_MAX_IN_FLIGHT: String(PER_NODE),
        HERALD_LOG_LEVEL: "debug",
      },
      logLimitBytes: 4 << 20,
    });
  });
  after(async () => {
    await h?.stop();
    await rx?.close();
  });

  /** `n` messages to `app` published through both nodes at once (the proxy alternates). */
  const publishMany = (app, n, tag) =>
    pooled(n, 10, (i) => h.svix.message.create(app.id, { eventType: "cap.test", payload: { tag, i } }));

  test("control: two endpoints on one receiver path see 2 × 2 = 4 requests open at once", async () => {
    // Both endpoints' URLs share a path (the query differs), so the receiver counts their
    // requests together: this shows that the two nodes do keep 4 open at once here.
    const app = await h.svix.application.create({ name: "cap-control", uid: uniq("cap") });
    const p = `/${uniq("control")}`;
    rx.respond(p, [{ status: 200, delayMs: HOLD_MS }]);
    await h.svix.endpoint.create(app.id, { url: rx.url(`${p}?e=1`) });
    await h.svix.endpoint.create(app.id, { url: rx.url(`${p}?e=2`) });
    await publishMany(app, 20, "control");
    await rx.waitFor(p, 40, 20_000);
    console.log(`concurrency control: at most ${rx.maxConcurrent(p)} requests open at once to two endpoints`);
    assert.equal(
      rx.maxConcurrent(p),
      2 * PER_NODE,
      `two nodes with HERALD_MAX_IN_FLIGHT=${PER_NODE} each, two endpoints with a backlog: ` +
        `expected ${2 * PER_NODE} requests open at once at the peak`,
    );
  });

  test(`one endpoint never sees more than ${CAP} requests at once, and does see ${CAP}: both nodes send`, async () => {
    const app = await h.svix.application.create({ name: "cap", uid: uniq("cap") });
    const p = `/${uniq("cap")}`;
    rx.respond(p, [{ status: 200, delayMs: HOLD_MS }]);
    const ep = await h.svix.endpoint.create(app.id, { url: rx.url(p) });
    const { key } = await h.svix.endpoint.getSecret(app.id, ep.id);
    const N = 30;
    const msgs = await publishMany(app, N, "cap");
    const reqs = await rx.waitFor(p, N, 20_000);
    const byNode = await attemptsByNode(h, ep.id, N);
    const peak = rx.maxConcurrent(p);
    const tookMs = Math.max(...reqs.map((r) => r.answeredAt ?? r.time)) - reqs[0].time;
    console.log(
      `concurrency cap ${CAP}: at most ${peak} requests open at once; attempts by node ${byNode.join(" / ")}; ` +
        `${N} deliveries held ${HOLD_MS} ms each took ${tookMs} ms`,
    );
    assert.ok(
      peak <= CAP,
      `HERALD_ENDPOINT_CONCURRENCY=${CAP} on both nodes, but the endpoint had ${peak} requests open at once: ` +
        `the cap is per process, not per cluster (attempts by node ${byNode.join(" / ")})`,
    );
    assert.equal(
      peak,
      CAP,
      `the endpoint never had ${CAP} requests open at once (peak ${peak}); one node alone holds at most ${PER_NODE}`,
    );
    assert.ok(byNode.every((n) => n > 0), `both nodes delivered to the endpoint: attempts by node ${byNode.join(" / ")}`);
    assert.equal(byNode[0] + byNode[1], N, `each delivery recorded once: attempts by node ${byNode.join(" / ")}`);
    const sent = new Map(msgs.map((m, i) => [m.id, { tag: "cap", i }]));
    assert.equal(new Set(reqs.map((r) => r.headers["webhook-id"])).size, N, "each message once");
    for (const r of reqs) verifyDelivery(key, r, { payload: sent.get(r.headers["webhook-id"]), what: "capped delivery" });
  });

  test("an endpoint at its cap stays busy: a freed slot is taken again at once, not at the next poll", async () => {
    // DELIVERY.md: "A result from an endpoint at its cap wakes the scheduler". With a backlog
    // the endpoint should have CAP requests open all along: N deliveries held HOLD_MS each
    // take about N / CAP × HOLD_MS. Waiting for the 1 s poll after each round of CAP would take
    // about N / CAP × (HOLD_MS + 1 s).
    const app = await h.svix.application.create({ name: "cap-busy", uid: uniq("cap") });
    const p = `/${uniq("busy")}`;
    rx.respond(p, [{ status: 200, delayMs: HOLD_MS }]);
    await h.svix.endpoint.create(app.id, { url: rx.url(p) });
    const N = 24;
    await publishMany(app, N, "busy");
    const reqs = await rx.waitFor(p, N, 30_000);
    await eventually(() => reqs.every((r) => r.answeredAt), { message: "every request answered" });
    const tookMs = Math.max(...reqs.map((r) => r.answeredAt)) - reqs[0].time;
    const busyMs = N * HOLD_MS;
    const meanOpen = busyMs / tookMs;
    const idealMs = (N / CAP) * HOLD_MS;
    console.log(
      `cap ${CAP} with a backlog: ${N} deliveries held ${HOLD_MS} ms took ${tookMs} ms ` +
        `(${meanOpen.toFixed(2)} open on average; ${idealMs} ms at the cap)`,
    );
    assert.ok(
      tookMs <= 2 * idealMs + 500,
      `an endpoint with HERALD_ENDPOINT_CONCURRENCY=${CAP} and ${N} deliveries waiting had only ` +
        `${meanOpen.toFixed(2)} requests open on average: ${N} × ${HOLD_MS} ms took ${tookMs} ms, ` +
        `expected about ${idealMs} ms (the parked deliveries waited for a poll after each round); ` +
        `arrivals at +${reqs.map((r) => r.time - reqs[0].time).join(",")} ms`,
    );
  });
});

describe("throttleRate across two nodes", { skip: NEEDS_POSTGRES }, () => {
  // The contract (docs/DELIVERY.md): a token bucket per endpoint holding one second's worth
  // (B = RATE tokens), refilled at RATE per second. So in any window of W seconds at most
  // B + RATE × W deliveries go out, and N deliveries with a backlog take at least
  // (N − B) / RATE seconds from the first. A bucket per process would let each node send that
  // much: twice the burst and twice the rate, (N − 2B) / (2 RATE) seconds for the whole run.
  const RATE = 10;
  const N = 50;
  let h;
  let rx;
  before(async () => {
    rx = await startReceiver();
    h = await startHerald({ env: { HERALD_LOG_LEVEL: "debug" }, logLimitBytes: 4 << 20 });
  });
  after(async () => {
    await h?.stop();
    await rx?.close();
  });

  test(`throttleRate ${RATE}: ${N} messages published through both nodes at once keep to one bucket`, async () => {
    const app = await h.svix.application.create({ name: "throttle", uid: uniq("thr") });
    const p = `/${uniq("thr")}`;
    const ep = await h.svix.endpoint.create(app.id, { url: rx.url(p), throttleRate: RATE });
    const { key } = await h.svix.endpoint.getSecret(app.id, ep.id);
    const published = Date.now();
    const msgs = await pooled(N, 10, (i) => h.svix.message.create(app.id, { eventType: "thr.test", payload: { i } }));
    const publishMs = Date.now() - published;
    const reqs = await rx.waitFor(p, N, 20_000);
    const byNode = await attemptsByNode(h, ep.id, N);
    // Judged on when herald sent each one, as its recorded attempt says (the time the bucket
    // admitted it, on one clock for both nodes); this busy process reads arrivals late at
    // times, which could only bunch them. The receiver's figures are shown too.
    const attempts = await eventually(
      async () => {
        const page = await h.svix.messageAttempt.listByEndpoint(app.id, ep.id, { limit: 250 });
        return page.data.length >= N ? page.data : null;
      },
      { message: `${N} attempts recorded` },
    );
    const times = attempts.map((a) => a.timestamp.getTime());
    const spanMs = Math.max(...times) - Math.min(...times);
    const windows = [1000, 2000].map((w) => ({ w, max: maxInWindow(times, w), bound: RATE + (RATE * w) / 1000 }));
    const arrivals = reqs.map((r) => r.time);
    // After the first second the backlog has drained the bucket: about RATE a second (not
    // the contract's bound; shown for the record).
    const steady = maxInWindow(times.filter((t) => t >= Math.min(...times) + 1000), 1000);
    console.log(
      `throttleRate ${RATE}/s: ${N} deliveries sent over ${spanMs} ms (published in ${publishMs} ms); ` +
        `most sent in one window: ${windows.map((x) => `${x.max} in ${x.w} ms (bound ${x.bound})`).join(", ")}; ` +
        `${steady} in 1 s after the first second; at the receiver ${maxInWindow(arrivals, 1000)} in 1 s, ` +
        `over ${Math.max(...arrivals) - Math.min(...arrivals)} ms; attempts by node ${byNode.join(" / ")}`,
    );
    for (const { w, max, bound } of windows) {
      // +1: attempt times are whole milliseconds.
      assert.ok(
        max <= bound + 1,
        `throttleRate ${RATE}: ${max} deliveries sent within ${w} ms, over the bucket's ${bound} ` +
          `(${RATE} burst + ${RATE}/s × ${w / 1000} s): the nodes do not share the bucket ` +
          `(attempts by node ${byNode.join(" / ")})`,
      );
    }
    const minSpanMs = ((N - RATE) / RATE) * 1000;
    assert.ok(
      spanMs >= minSpanMs - 250,
      `throttleRate ${RATE}: ${N} deliveries took ${spanMs} ms; a shared bucket needs ≥ ${minSpanMs} ms ` +
        `(per-process buckets: ${((N - 2 * RATE) / (2 * RATE)) * 1000} ms)`,
    );
    assert.ok(spanMs <= minSpanMs + 3000, `throttleRate ${RATE}: ${N} deliveries took ${spanMs} ms, far slower than the rate`);
    assert.equal(byNode[0] + byNode[1], N, `each delivery recorded once: attempts by node ${byNode.join(" / ")}`);
    const sent = new Map(msgs.map((m, i) => [m.id, { i }]));
    assert.equal(new Set(reqs.map((r) => r.headers["webhook-id"])).size, N, "each message once");
    for (const r of reqs) verifyDelivery(key, r, { payload: sent.get(r.headers["webhook-id"]), what: "throttled delivery" });
  });
});
