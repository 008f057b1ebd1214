// What herald's log says, and what it never says: at debug, with every attempt logged, no secret,
// signature, custom header value, token or payload appears in its output; at info, failed
// attempts are logged and successful ones are not (docs/CONFIGURATION.md, "Logging").
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  eventually,
  makeSecret,
  rawRequest,
  signaturesOf,
  startHerald,
  startReceiver,
  uniq,
} from "./harness.mjs";

let rx;

before(async () => {
  rx = await startReceiver();
});

after(async () => {
  await rx?.close();
});

/** Every node's stdout and stderr. */
function output(h) {
  const { stdout, stderr } = h.logs();
  return stdout + "\n" + stderr;
}

/** The attempt lines herald logged for `msgId`. */
function attemptLines(h, msgId) {
  return output(h)
    .split("\n")
    .filter((l) => l.includes("attempt") && l.includes(`msg=${msgId}`));
}

describe("logging", () => {
  test("at debug: no secret, signature, header value, token or payload in the output", async () => {
    const h = await startHerald({ env: { HERALD_LOG_LEVEL: "debug" } });
    try {
      const svix = h.svix;
      const secret = makeSecret();
      const headerValue = `hdr-${uniq("v")}-${makeSecret(12).slice(6)}`;
      const queryToken = uniq("qtok");
      const marker = uniq("payload-marker");
      const app = await svix.application.create({ name: "logging", uid: uniq("app") });
      const okPath = `/${uniq("log-ok")}`;
      const failPath = `/${uniq("log-fail")}`;
      rx.respond(failPath, [500, 204]);
      const ok = await svix.endpoint.create(app.id, {
        url: rx.url(okPath),
        secret,
        headers: { "X-Api-Key": headerValue },
      });
      const failing = await svix.endpoint.create(app.id, {
        url: rx.url(`${failPath}?token=${queryToken}`),
        secret,
        headers: { "X-Api-Key": headerValue },
      });
      // An application token made through the API, and the admin token itself.
      const tokenRes = await rawRequest(h, "POST", `/api/v1/auth/app-portal-access/${app.id}`, { body: {} });
      assert.equal(tokenRes.status, 200, tokenRes.text);
      const portalToken = tokenRes.json.token;
      assert.ok(portalToken, "a portal token");

      const msg = await svix.message.create(app.id, { eventType: "log.test", payload: { marker, n: 1 } });
      const [req] = await rx.waitFor(okPath, 1);
      const failed = await rx.waitFor(failPath, 2);
      await eventually(async () => {
        const a = await svix.messageAttempt.listByEndpoint(app.id, failing.id);
        return a.data.some((x) => x.responseStatusCode === 204);
      });
      // Both attempts of the failing endpoint and the one of the other were logged (debug).
      await eventually(() => attemptLines(h, msg.id).length >= 3, { message: "three attempt lines" });
      assert.equal(req.headers["x-api-key"], headerValue, "the header did go out");
      assert.ok(ok.id && failing.id);

      const signatures = [req, ...failed].flatMap((r) => signaturesOf(r).map((s) => s.sig));
      assert.ok(signatures.length >= 3, "signatures were sent");
      const forbidden = {
        "the secret": secret,
        "the secret's key": secret.slice("whsec_".length),
        "a custom header's value": headerValue,
        "a token in the endpoint URL": queryToken,
        "the payload": marker,
        "the admin token": h.token,
        "a portal token": portalToken,
        ...Object.fromEntries(signatures.map((s, i) => [`signature ${i}`, s])),
      };
      const text = output(h);
      assert.ok(text.includes(`msg=${msg.id}`), "the debug output does log the attempts");
      for (const [what, value] of Object.entries(forbidden)) {
        assert.ok(!text.includes(value), `${what} appears in herald's output`);
      }
    } finally {
      await h.stop();
    }
  });

  test("at info: a failed attempt is logged with its status, a successful one is not", async () => {
    const h = await startHerald({ env: { HERALD_LOG_LEVEL: "info" } }); // the suite runs at warn
    try {
      const svix = h.svix;
      const app = await svix.application.create({ name: "logging-info", uid: uniq("app") });
      const okPath = `/${uniq("info-ok")}`;
      const failPath = `/${uniq("info-fail")}`;
      rx.respond(failPath, [503, 204]);
      const ok = await svix.endpoint.create(app.id, { url: rx.url(okPath) });
      const failing = await svix.endpoint.create(app.id, { url: rx.url(failPath) });
      const msg = await svix.message.create(app.id, { eventType: "log.test", payload: { n: 2 } });
      await rx.waitFor(okPath, 1);
      await rx.waitFor(failPath, 2);
      await eventually(async () => {
        const a = await svix.messageAttempt.listByEndpoint(app.id, failing.id);
        return a.data.length === 2;
      });
      const lines = await eventually(
        () => {
          const l = attemptLines(h, msg.id);
          return l.length >= 1 ? l : null;
        },
        { message: "the failed attempt's line" },
      );
      const failedLine = lines.find((l) => l.includes(`endpoint=${failing.id}`));
      assert.ok(failedLine, `the failed attempt is logged: ${lines.join("\n")}`);
      assert.match(failedLine, /status=503/);
      assert.match(failedLine, /outcome=pending/, "the delivery's state after it");
      assert.match(failedLine, /\binfo\b/i, "at info");
      const all = attemptLines(h, msg.id);
      assert.ok(
        !all.some((l) => l.includes(`endpoint=${ok.id}`) || l.includes("status=204")),
        `successful attempts are not logged at info: ${all.join("\n")}`,
      );
    } finally {
      await h.stop();
    }
  });
});
