// SSRF guard: without HERALD_ALLOW_PRIVATE_CIDRS covering loopback, herald must never connect
// to a loopback receiver, however the address is spelled. Either the endpoint is refused at
// creation (422) or every attempt fails without a request reaching the receiver.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import dns from "node:dns/promises";

import {
  assertValidationBody,
  eventually,
  expectApiError,
  startHerald,
  startReceiver,
} from "./harness.mjs";

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
  test("loopback destinations are refused in every spelling, each of which reaches a receiver", async () => {
    const app = await svix.application.create({ name: "ssrf" });
    const port = rx.port;
    // A receiver on every address a spelling names, all on one port, so that a delivery the
    // guard let through would arrive: 127.0.0.2 and whatever localhost resolves to here.
    const localhost = (await dns.lookup("localhost", { all: true })).map((a) => a.address);
    const others = [];
    for (const host of new Set(["127.0.0.2", ...localhost])) {
      if (host !== "127.0.0.1") others.push(await startReceiver({ host, port }));
    }
    const receivers = [rx, ...others];
    try {
      const spellings = {
        dotted: `http://127.0.0.1:${port}/ssrf/dotted`,
        localhost: `http://localhost:${port}/ssrf/localhost`,
        other127: `http://127.0.0.2:${port}/ssrf/other127`,
        decimal: `http://2130706433:${port}/ssrf/decimal`,
        hex: `http://0x7f000001:${port}/ssrf/hex`,
        short: `http://127.1:${port}/ssrf/short`,
        mapped: `http://[::ffff:127.0.0.1]:${port}/ssrf/mapped`,
      };
      // Without the guard each spelling is reached: Node's client reads them as curl does.
      for (const [name, url] of Object.entries(spellings)) {
        const res = await fetch(url.replace("/ssrf/", "/control/"), { method: "POST", body: "{}" });
        assert.equal(res.status, 204, `${name}: ${url} reaches a receiver when nothing guards it`);
      }
      const eps = {};
      for (const [name, url] of Object.entries(spellings)) {
        eps[name] = await svix.endpoint.create(app.id, { url });
      }
      await svix.message.create(app.id, { eventType: "user.created", payload: { ssrf: true } });
      for (const [name, ep] of Object.entries(eps)) {
        const attempts = await eventually(
          async () => {
            const r = await svix.messageAttempt.listByEndpoint(app.id, ep.id, { withContent: true });
            return r.data.length === 4 ? r.data : null;
          },
          { timeoutMs: 5000, message: `${name}: 4 refused attempts (the first try and 3 retries)` },
        );
        for (const a of attempts) {
          assert.equal(a.status, 2, `${name}: ${JSON.stringify(a)}`);
          assert.equal(a.responseStatusCode, 0, `${name}: no response arrived`);
          // The guard's own reason, not a refused or timed-out connection.
          assert.match(
            a.response,
            /^refused by the SSRF guard: (127\.\d+\.\d+\.\d+|::1) is a loopback address|^refused by the SSRF guard: ::ffff:127\.0\.0\.1 is the IPv4-mapped form of 127\.0\.0\.1, a loopback address/,
            `${name}: the attempt's response is the guard's: ${JSON.stringify(a.response)}`,
          );
        }
      }
      // Every attempt of the schedule is recorded: none of them reached a receiver.
      const leaked = receivers.flatMap((r) => r.requests().filter((q) => q.path.startsWith("/ssrf/")));
      assert.deepEqual(leaked.map((q) => q.path), [], "the SSRF guard let requests reach loopback");
      const controls = receivers.flatMap((r) => r.requests().filter((q) => q.path.startsWith("/control/")));
      assert.equal(controls.length, Object.keys(spellings).length);
    } finally {
      for (const r of others) await r.close();
    }
  });

  test("a refused delivery is a failed attempt whose response names the SSRF guard", async () => {
    const app = await svix.application.create({ name: "ssrf-response" });
    const ep = await svix.endpoint.create(app.id, { url: rx.url("/ssrf/response") });
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload: { r: 1 } });
    const attempts = await eventually(
      async () => {
        const r = await svix.messageAttempt.listByMsg(app.id, msg.id, { withContent: true });
        return r.data.length === 4 ? r.data : null;
      },
      { timeoutMs: 5000, message: "4 refused attempts (the first try and 3 retries)" },
    );
    for (const a of attempts) {
      assert.equal(a.endpointId, ep.id);
      assert.equal(a.status, 2, `a refused delivery is a failure: ${JSON.stringify(a)}`);
      assert.equal(a.responseStatusCode, 0, "no response arrived");
      assert.match(
        a.response,
        /^refused by the SSRF guard: 127\.0\.0\.1 is a loopback address/,
        `the attempt's response says why: ${JSON.stringify(a.response)}`,
      );
    }
    assert.equal(rx.requests("/ssrf/response").length, 0);
  });

  test("the cloud metadata address is refused at once, not timed out", async () => {
    const app = await svix.application.create({ name: "ssrf-metadata" });
    const urls = [
      "http://169.254.169.254/latest/meta-data/",
      "http://[::ffff:169.254.169.254]/latest/meta-data/",
      "http://2852039166/latest/meta-data/", // 169.254.169.254 as one decimal number
    ];
    const eps = [];
    for (const url of urls) eps.push(await svix.endpoint.create(app.id, { url }));
    await svix.message.create(app.id, { eventType: "user.created", payload: { m: 1 } });
    for (const [i, ep] of eps.entries()) {
      const attempts = await eventually(
        async () => {
          const r = await svix.messageAttempt.listByEndpoint(app.id, ep.id, { withContent: true });
          return r.data.length ? r.data : null;
        },
        // The request timeout is 2s: a first attempt within 1.5s was never connecting.
        { timeoutMs: 1500, message: `a refused attempt for ${urls[i]}` },
      );
      const a = attempts[attempts.length - 1];
      assert.equal(a.status, 2);
      assert.equal(a.responseStatusCode, 0);
      assert.match(a.response, /^refused by the SSRF guard: .*169\.254\.169\.254\b.* the link-local cloud metadata address/, urls[i]);
      assert.ok(a.responseDurationMs < 500, `refused without connecting: ${a.responseDurationMs} ms`);
    }
  });
});

describe("SSRF guard: on by default", () => {
  let h2;
  let rx2;

  before(async () => {
    h2 = await startHerald({ env: { HERALD_ALLOW_PRIVATE_CIDRS: "" } }); // no allow list at all
    rx2 = await startReceiver();
  });

  after(async () => {
    await h2?.stop();
    await rx2?.close();
  });

  test("with no HERALD_ALLOW_PRIVATE_CIDRS loopback is refused", async () => {
    const app = await h2.svix.application.create({ name: "ssrf-default" });
    const ep = await h2.svix.endpoint.create(app.id, { url: rx2.url("/default") });
    await h2.svix.message.create(app.id, { eventType: "user.created", payload: { d: 1 } });
    const attempts = await eventually(
      async () => {
        const r = await h2.svix.messageAttempt.listByEndpoint(app.id, ep.id, { withContent: true });
        return r.data.length ? r.data : null;
      },
      { timeoutMs: 3000, message: "a refused attempt" },
    );
    assert.match(attempts[0].response, /^refused by the SSRF guard: /);
    await eventually(
      async () => {
        const r = await h2.svix.messageAttempt.listByEndpoint(app.id, ep.id, { withContent: true });
        return r.data.length === 4 && r.data.every((a) => /^refused by the SSRF guard: /.test(a.response));
      },
      { timeoutMs: 5000, message: "the whole schedule's 4 attempts, each refused" },
    );
    assert.equal(rx2.requests().length, 0, "nothing reached the loopback receiver");
  });
});

describe("HERALD_HTTPS_ONLY", () => {
  let h3;

  before(async () => {
    h3 = await startHerald({ env: { HERALD_HTTPS_ONLY: "true" } });
  });

  after(async () => {
    await h3?.stop();
  });

  test("rejects http:// endpoint URLs at creation and update, accepts https://", async () => {
    const app = await h3.svix.application.create({ name: "https-only" });
    for (const url of ["http://example.com/hook", "HTTP://example.com/hook"]) {
      const err = await expectApiError(
        h3.svix.endpoint.create(app.id, { url }),
        422,
        undefined,
        `create ${url} on an https-only server`,
      );
      assertValidationBody(err.body, `create ${url}`);
      assert.ok(
        err.body.detail.some((d) => JSON.stringify(d.loc) === JSON.stringify(["body", "url"])),
        `the error is at ["body","url"]: ${JSON.stringify(err.body)}`,
      );
    }
    const ep = await h3.svix.endpoint.create(app.id, { url: "https://example.com/hook" });
    assert.equal(ep.url, "https://example.com/hook");
    const upper = await h3.svix.endpoint.create(app.id, { url: "HTTPS://example.com/upper" });
    assert.equal(upper.url, "HTTPS://example.com/upper");

    await expectApiError(
      h3.svix.endpoint.patch(app.id, ep.id, { url: "http://example.com/patched" }),
      422,
      undefined,
      "patch to http://",
    );
    await expectApiError(
      h3.svix.endpoint.upsert(app.id, ep.id, { url: "http://example.com/put" }),
      422,
      undefined,
      "put to http://",
    );
    const still = await h3.svix.endpoint.get(app.id, ep.id);
    assert.equal(still.url, "https://example.com/hook", "a rejected update changes nothing");
    const patched = await h3.svix.endpoint.patch(app.id, ep.id, { url: "https://example.com/v2" });
    assert.equal(patched.url, "https://example.com/v2");
  });

  test("is off by default: http:// is accepted", async () => {
    const app = await svix.application.create({ name: "http-ok" });
    const ep = await svix.endpoint.create(app.id, { url: "http://example.com/hook" });
    assert.equal(ep.url, "http://example.com/hook");
  });
});
