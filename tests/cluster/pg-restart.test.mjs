// PostgreSQL restarts (fast shutdown: every connection cut) while messages are published through
// both nodes: each request gets a 202 or a 503 JSON with Retry-After, none hangs, neither node
// dies, both serve afterwards, and every message acknowledged before, during or after the
// restart is delivered.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";

import { eventually, rawRequest, sleep, startHerald, startReceiver, uniq, verifyDelivery } from "../conformance/harness.mjs";
import { NEEDS_POSTGRES, publish, restartPostgres } from "./support.mjs";

const REQUEST_LIMIT_MS = 10_000; // a request unanswered this long hangs

const cleanups = [];
after(async () => {
  const errors = [];
  for (const c of cleanups.reverse()) await c().catch((e) => errors.push(e));
  if (errors.length) throw errors[0];
});

describe("PostgreSQL restart under load", { skip: NEEDS_POSTGRES }, () => {
  test("503 JSON with Retry-After or success, never a hang; both nodes live on; every 202 delivered", async () => {
    const h = await startHerald();
    cleanups.push(() => h.stop());
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    const app = await h.svix.application.create({ name: "pg-restart", uid: uniq("pgr") });
    const base = `/${uniq("pgr")}`;
    const endpoints = [];
    for (const name of ["a", "b"]) {
      // Answers take up to 40 ms, so that some requests are open when the server goes away.
      rx.respond(`${base}/${name}`, [() => ({ status: 204, delayMs: Math.floor(Math.random() * 41) })]);
      const ep = await h.svix.endpoint.create(app.id, { url: rx.url(`${base}/${name}`) });
      endpoints.push({ ep, path: `${base}/${name}`, secret: (await h.svix.endpoint.getSecret(app.id, ep.id)).key });
    }

    // 4 publishers, each alternating between the nodes, a request every ~20 ms.
    const results = [];
    const acked = new Map(); // msgId -> payload
    let next = 0;
    let stopping = false;
    const worker = async () => {
      while (!stopping) {
        const i = next++;
        const node = h.nodes[i % 2];
        const payload = { i, restart: true };
        const r = await publish(node, app.id, payload, { timeoutMs: REQUEST_LIMIT_MS });
        results.push({ i, node: node.name, ...r });
        if (r.status === 202) acked.set(r.json.id, payload);
        await sleep(20);
      }
    };
    const workers = Promise.all(Array.from({ length: 4 }, worker));
    let restart;
    try {
      await eventually(() => acked.size >= 40, { timeoutMs: 10_000, message: "40 messages acknowledged before the restart" });
      restart = await restartPostgres();
      const ackedAfter = () => results.filter((r) => r.status === 202 && r.startedAt > restart.endedAt);
      await eventually(
        () => h.nodes.every((n) => ackedAfter().filter((r) => r.node === n.name).length >= 20),
        { timeoutMs: 20_000, message: "20 messages acknowledged by each node after the restart" },
      ).catch(() => {}); // judged below, with everything that came back
    } finally {
      stopping = true;
      await workers;
    }

    const during = results.filter((r) => r.startedAt <= restart.endedAt && r.at >= restart.startedAt);
    const unavailable = results.filter((r) => r.status === 503);
    const slowest = Math.max(...results.map((r) => r.at - r.startedAt));
    const firstAfter = h.nodes.map((n) => {
      const r = results.find((x) => x.node === n.name && x.status === 202 && x.startedAt >= restart.startedAt);
      return r ? `${n.name} ${r.at - restart.endedAt} ms from its end` : `${n.name} never`;
    });
    const summary =
      `${results.length} requests, ${acked.size} acknowledged, ${unavailable.length} answered 503, ` +
      `${during.length} overlapping the restart (${restart.endedAt - restart.startedAt} ms); slowest answer ` +
      `${slowest} ms; first 202 once the restart began: ${firstAfter.join(", ")}`;
    console.log(`PostgreSQL restart: ${summary}`);

    const hung = results.filter((r) => r.timedOut);
    assert.deepEqual(
      hung.map((r) => `${r.node} #${r.i} sent +${r.startedAt - restart.startedAt} ms`),
      [],
      `requests unanswered after ${REQUEST_LIMIT_MS} ms; ${summary}`,
    );
    const broken = results.filter((r) => r.error && !r.timedOut);
    assert.deepEqual(
      broken.map((r) => `${r.node} #${r.i}: ${r.error.message} ${r.error.cause?.code ?? ""}`),
      [],
      `requests that got no HTTP answer (connection refused or reset); ${summary}`,
    );
    const odd = results.filter((r) => r.status !== undefined && r.status !== 202 && r.status !== 503);
    assert.deepEqual(
      odd.map((r) => `${r.node} #${r.i}: ${r.status} ${r.text.slice(0, 200)}`),
      [],
      `answers other than 202 and 503; ${summary}`,
    );
    for (const r of unavailable) {
      const what = `503 from ${r.node} (#${r.i})`;
      assert.match(r.headers.get("content-type") ?? "", /application\/json/, `${what}: JSON content type`);
      assert.ok(r.json && typeof r.json.code === "string", `${what}: a JSON error body, got ${r.text.slice(0, 200)}`);
      const retryAfter = r.headers.get("retry-after");
      assert.match(retryAfter ?? "", /^[1-9]\d*$/, `${what}: Retry-After in seconds, got ${retryAfter}`);
    }
    assert.ok(during.length > 0, `no request overlapped the restart; ${summary}`);

    // Both nodes live on and serve.
    for (const node of h.nodes) {
      assert.equal(node.exited(), null, `${node.name} died in the outage: ${JSON.stringify(node.exited())}`);
      const health = await rawRequest(node, "GET", "/api/v1/health");
      assert.ok([200, 204].includes(health.status), `${node.name}: GET /api/v1/health → ${health.status}`);
      const r = await publish(node, app.id, { after: node.name });
      const answer = `${r.status ?? r.error?.message} ${r.text ?? ""}`;
      assert.equal(r.status, 202, `${node.name} accepts messages after the restart: ${answer}`);
      acked.set(r.json.id, { after: node.name });
    }

    // Every acknowledged message arrives at both endpoints, signed.
    const missing = () =>
      endpoints.flatMap(({ path: p }) => {
        const ids = new Set(rx.requests(p).map((r) => r.headers["webhook-id"]));
        return [...acked.keys()].filter((id) => !ids.has(id)).map((id) => `${p} ${id}`);
      });
    await eventually(() => missing().length === 0, {
      timeoutMs: 30_000,
      intervalMs: 200,
      message: "every 202 delivered",
    }).catch(() => {});
    const lost = missing();
    assert.deepEqual(lost.slice(0, 20), [], `${lost.length} acknowledged deliveries never arrived; ${summary}`);
    for (const { path: p, secret } of endpoints) {
      for (const r of rx.requests(p)) {
        const id = r.headers["webhook-id"];
        verifyDelivery(secret, r, { payload: acked.get(id), what: `delivery of ${id}` });
      }
    }

    // Once everything arrived, no node still counts an attempt in flight (a result the outage
    // kept from being recorded must not hold the node's slot, nor its shutdown, forever).
    const inFlight = async (node) => {
      const m = await rawRequest(node, "GET", "/metrics", { token: null });
      return Number(/^herald_deliveries_in_flight (\S+)$/m.exec(m.text)?.[1]);
    };
    let counts;
    await eventually(
      async () => {
        counts = await Promise.all(h.nodes.map(inFlight));
        return counts.every((c) => c === 0);
      },
      { timeoutMs: 5000, message: "herald_deliveries_in_flight 0 on every node" },
    ).catch(() => {});
    assert.deepEqual(
      counts,
      h.nodes.map(() => 0),
      `every delivery arrived, the receiver answered them all, yet herald_deliveries_in_flight by node is ` +
        `${counts.join(" / ")} 5 s later: attempts whose results the outage kept from being recorded ` +
        `stay in flight in the scheduler (its capacity shrinks, and SIGTERM never finishes the drain)`,
    );
  });
});
