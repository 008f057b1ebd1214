// A change made through one node applies to every message accepted afterwards, whichever node
// accepts it: read-your-writes across the cluster, as a single herald gives it. Each case is
// repeated, back to back over raw HTTP, since what it guards against is a window of a few ms
// (the other node's caches of endpoints, until it hears of the change).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { eventually, sleep, startHerald, startReceiver, uniq } from "../conformance/harness.mjs";
import { NEEDS_POSTGRES } from "./support.mjs";

const ROUNDS = 80;

describe("changes through one node apply at once on the other", { skip: NEEDS_POSTGRES }, () => {
  let h;
  let rx;
  let A;
  let B;
  before(async () => {
    rx = await startReceiver();
    h = await startHerald();
    [A, B] = h.nodes;
  });
  after(async () => {
    await h?.stop();
    await rx?.close();
  });

  /** One API call straight to `node`; resolves with the JSON body, throws unless 2xx. */
  async function api(node, method, path, body) {
    const res = await fetch(`${node.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${h.token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${path} through ${node.name}: ${res.status} ${text.slice(0, 200)}`);
    return text ? JSON.parse(text) : undefined;
  }

  /** An app whose endpoints node B has just fanned a message out to (so B knows them). */
  async function appKnownToB(control) {
    const app = await api(A, "POST", "/app", { name: "consistency" });
    await api(A, "POST", `/app/${app.id}/endpoint`, { url: rx.url(control) });
    await api(B, "POST", `/app/${app.id}/msg`, { eventType: "c.test", payload: { warm: true } });
    return app;
  }

  const arrived = (p, msgId) => rx.requests(p).some((r) => r.headers["webhook-id"] === msgId);

  test("an endpoint created through A gets every message accepted afterwards through B", async () => {
    const expected = []; // [path, msgId]
    for (let i = 0; i < ROUNDS; i++) {
      const app = await appKnownToB(`/${uniq("ctl")}`);
      const p = `/${uniq("new")}`;
      await api(A, "POST", `/app/${app.id}/endpoint`, { url: rx.url(p) }); // 201: it exists
      const msg = await api(B, "POST", `/app/${app.id}/msg`, { eventType: "c.test", payload: { i } });
      expected.push([p, msg.id]);
    }
    await eventually(() => expected.every(([p, id]) => arrived(p, id)), { timeoutMs: 5000 }).catch(() => {});
    const missed = expected.filter(([p, id]) => !arrived(p, id));
    assert.deepEqual(
      missed.map(([p, id]) => `${id} never reached ${p}`),
      [],
      `${missed.length} of ${ROUNDS} messages accepted through B after an endpoint was created through A ` +
        "(201) never reached it: B fanned them out to the endpoints it knew of before",
    );
  });

  test("an endpoint's new URL, set through A, applies to every message accepted afterwards through B", async () => {
    const cases = [];
    for (let i = 0; i < ROUNDS; i++) {
      const app = await api(A, "POST", "/app", { name: "consistency-url" });
      const [before, after] = [`/${uniq("old")}`, `/${uniq("new")}`];
      const ep = await api(A, "POST", `/app/${app.id}/endpoint`, { url: rx.url(before) });
      await api(B, "POST", `/app/${app.id}/msg`, { eventType: "c.test", payload: { i, first: true } });
      await rx.waitFor(before, 1, 5000); // the first message, at the old URL
      await api(A, "PATCH", `/app/${app.id}/endpoint/${ep.id}`, { url: rx.url(after) }); // 200: changed
      const msg = await api(B, "POST", `/app/${app.id}/msg`, { eventType: "c.test", payload: { i } });
      cases.push({ before, after, id: msg.id });
    }
    await eventually(() => cases.every((c) => arrived(c.after, c.id) || arrived(c.before, c.id)), { timeoutMs: 5000 }).catch(
      () => {},
    );
    const wrong = cases.filter((c) => !arrived(c.after, c.id));
    assert.deepEqual(
      wrong.map((c) => `${c.id} ${arrived(c.before, c.id) ? "went to the old URL" : "never arrived"}`),
      [],
      `${wrong.length} of ${ROUNDS} messages accepted through B after the endpoint's URL was changed through A ` +
        "(200) did not go to the new URL",
    );
  });

  test("an endpoint disabled through A gets no message accepted afterwards through B", async () => {
    const cases = [];
    for (let i = 0; i < ROUNDS; i++) {
      const control = `/${uniq("ctl")}`;
      const app = await api(A, "POST", "/app", { name: "consistency-disabled" });
      await api(A, "POST", `/app/${app.id}/endpoint`, { url: rx.url(control) });
      const p = `/${uniq("off")}`;
      const ep = await api(A, "POST", `/app/${app.id}/endpoint`, { url: rx.url(p) });
      await api(B, "POST", `/app/${app.id}/msg`, { eventType: "c.test", payload: { i, first: true } });
      await rx.waitFor(p, 1, 5000); // the first message, while enabled
      await api(A, "PATCH", `/app/${app.id}/endpoint/${ep.id}`, { disabled: true }); // 200: disabled
      const msg = await api(B, "POST", `/app/${app.id}/msg`, { eventType: "c.test", payload: { i } });
      cases.push({ control, p, id: msg.id });
    }
    // Every message reached its control endpoint; give the disabled ones as long again.
    await eventually(() => cases.every((c) => arrived(c.control, c.id)), { timeoutMs: 5000, message: "every control delivery" });
    await sleep(300);
    const leaked = cases.filter((c) => arrived(c.p, c.id));
    assert.deepEqual(
      leaked.map((c) => `${c.id} reached ${c.p}`),
      [],
      `${leaked.length} of ${ROUNDS} messages accepted through B after the endpoint was disabled through A (200) ` +
        "were delivered to it",
    );
  });
});
