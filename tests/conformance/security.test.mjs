// SSRF guard: without HERALD_ALLOW_PRIVATE_CIDRS covering loopback, herald must never connect
// to a loopback receiver, however the address is spelled. Either the endpoint is refused at
// creation (422) or every attempt fails without a request reaching the receiver.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { ApiException, eventually, sleep, startHerald, startReceiver } from "./harness.mjs";

let h;
let rx;
let svix;

before(async () => {
  // Only TEST-NET-1 is allowed: loopback is not.
  h = await startHerald({ env: { HERALD_ALLOW_PRIVATE_CIDRS: "192.0.2.0/24" } });
  svix = h.svix;
  rx = await startReceiver();
});

after(async () => {
  await h?.stop();
  await rx?.close();
});

describe("SSRF guard", () => {
  test("loopback destinations are blocked in every spelling", { todo: "the SSRF guard is issue #4" }, async () => {
    const app = await svix.application.create({ name: "ssrf" });
    const port = rx.port;
    const spellings = {
      dotted: `http://127.0.0.1:${port}/ssrf/dotted`,
      localhost: `http://localhost:${port}/ssrf/localhost`,
      other127: `http://127.0.0.2:${port}/ssrf/other127`,
      decimal: `http://2130706433:${port}/ssrf/decimal`,
      hex: `http://0x7f000001:${port}/ssrf/hex`,
      short: `http://127.1:${port}/ssrf/short`,
      mapped: `http://[::ffff:127.0.0.1]:${port}/ssrf/mapped`,
    };
    const created = {};
    const refused = [];
    for (const [name, url] of Object.entries(spellings)) {
      try {
        created[name] = await svix.endpoint.create(app.id, { url });
      } catch (e) {
        if (e instanceof ApiException && e.code === 422) refused.push(name);
        else throw e;
      }
    }
    await svix.message.create(app.id, { eventType: "user.created", payload: { ssrf: true } });
    // whole schedule is 100+200+400 ms
    await sleep(1500);
    const leaked = rx.requests().filter((r) => r.path.startsWith("/ssrf/")).map((r) => r.path);
    assert.deepEqual(leaked, [], `the SSRF guard let requests reach loopback: ${leaked.join(", ")}`);

    for (const [name, ep] of Object.entries(created)) {
      const attempts = await eventually(
        async () => {
          const r = await svix.messageAttempt.listByEndpoint(app.id, ep.id);
          return r.data.length ? r.data : null;
        },
        { timeoutMs: 3000, message: `a recorded (failed) attempt for the blocked ${name} endpoint` },
      );
      assert.ok(
        attempts.every((a) => a.status === 2),
        `${name}: blocked deliveries must be recorded as failures: ${JSON.stringify(attempts)}`,
      );
    }
    assert.ok(Object.keys(created).length + refused.length === Object.keys(spellings).length);
  });
});
