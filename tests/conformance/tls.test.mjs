// Deliveries over https to real TLS receivers on loopback, with certificates made for the test
// by the openssl command: a private CA trusted through HERALD_CA_FILE, and a certificate
// signed by it, one for another name, one expired, one from an unknown CA, and a receiver
// that speaks only TLS 1.1. Only the first may be delivered to; every other attempt fails,
// and its response says why. Then client certificates (mTLS): a receiver that asks for one
// signed by its own CA gets the endpoint's, and refuses an endpoint with none or another.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";

import crypto from "node:crypto";

import {
  assertValidationBody,
  databaseCopy,
  eventually,
  rawRequest,
  runHerald,
  startHerald,
  uniq,
  verifyDelivery,
} from "./harness.mjs";

let dir;
const certs = {};
const receivers = {};

function openssl(...args) {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

// A key and a certificate for `name` under `san`, signed by the CA `ca` (or self-signed).
function makeCert(name, { san = "IP:127.0.0.1", ca = "ca", days = "30" } = {}) {
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
  writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
  const signer = ca ? ["-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-CAcreateserial"] : ["-key", `${name}.key`];
  openssl("x509", "-req", "-in", `${name}.csr`, ...signer, "-out", `${name}.pem`, "-days", days,
    "-extfile", `${name}.ext`);
  return { key: readFileSync(path.join(dir, `${name}.key`)), cert: readFileSync(path.join(dir, `${name}.pem`)) };
}

function makeCa(name) {
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "30", "-subj", `/CN=${name}`);
}

// An https receiver on 127.0.0.1 that records what it gets and answers 204.
async function startTlsReceiver(options) {
  const requests = [];
  const server = https.createServer(options, (req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const rawBody = Buffer.concat(chunks);
      const peer = req.socket.getPeerCertificate?.();
      requests.push({
        method: req.method,
        path: req.url,
        headers: req.headers,
        rawBody,
        body: rawBody.toString("utf8"),
        index: requests.length,
        clientCn: peer?.subject?.CN ?? null,
      });
      res.writeHead(204).end();
    });
  });
  server.on("tlsClientError", () => {}); // refused handshakes are the point
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `https://127.0.0.1:${server.address().port}/hook`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "herald-tls-"));
  makeCa("ca");
  makeCa("other-ca");
  certs.trusted = makeCert("trusted");
  certs.wrongName = makeCert("wrong-name", { san: "DNS:wrong.example" });
  certs.expired = makeCert("expired", { days: "-1" });
  certs.unknownCa = makeCert("unknown-ca", { ca: "other-ca" });
  receivers.trusted = await startTlsReceiver(certs.trusted);
  receivers.wrongName = await startTlsReceiver(certs.wrongName);
  receivers.expired = await startTlsReceiver(certs.expired);
  receivers.unknownCa = await startTlsReceiver(certs.unknownCa);
  // mTLS: the receiver asks for a client certificate signed by its own CA and refuses others.
  makeCa("client-ca");
  certs.client = makeCert("acme-client", { ca: "client-ca", san: "DNS:acme-client" });
  certs.stranger = makeCert("stranger", { ca: "other-ca", san: "DNS:stranger" });
  certs.expiredClient = makeCert("expired-client", { ca: "client-ca", san: "DNS:expired", days: "-1" });
  receivers.mtls = await startTlsReceiver({
    ...certs.trusted,
    requestCert: true,
    rejectUnauthorized: true,
    ca: readFileSync(path.join(dir, "client-ca.pem")),
  });
  receivers.tls11 = await startTlsReceiver({ ...certs.trusted, minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT:@SECLEVEL=0" });
});

after(async () => {
  for (const r of Object.values(receivers)) await r.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// Publishes one message to an endpoint at `url` and resolves with its first attempt.
async function firstAttempt(h, url) {
  const app = await h.svix.application.create({ name: "tls", uid: uniq("tls") });
  await h.svix.endpoint.create(app.id, { url });
  const msg = await h.svix.message.create(app.id, { eventType: "tls.test", payload: { tls: true } });
  return eventually(
    async () => (await h.svix.messageAttempt.listByMsg(app.id, msg.id, { withContent: true })).data.at(-1),
    { timeoutMs: 8000, message: `an attempt to ${url}` },
  );
}

describe("https endpoints", () => {
  let h;
  before(async () => {
    h = await startHerald({ env: { HERALD_CA_FILE: path.join(dir, "ca.pem") }, retrySchedule: "1h" });
  });
  after(async () => h?.stop());

  test("a certificate from the trusted CA, for the host's name: delivered and verified", async () => {
    const app = await h.svix.application.create({ name: "tls-ok", uid: uniq("tls-ok") });
    const ep = await h.svix.endpoint.create(app.id, { url: receivers.trusted.url });
    const { key } = await h.svix.endpoint.getSecret(app.id, ep.id);
    const msg = await h.svix.message.create(app.id, { eventType: "tls.test", payload: { over: "tls" } });
    const req = await eventually(() => receivers.trusted.requests.find((r) => r.headers["webhook-id"] === msg.id), {
      message: "the delivery at the trusted receiver",
    });
    verifyDelivery(key, req, { msgId: msg.id, payload: { over: "tls" }, what: "https delivery" });
  });

  const refusals = [
    ["another name", "wrongName", /no alternative certificate subject name matches target host name '127\.0\.0\.1'/],
    ["an expired certificate", "expired", /certificate has expired/],
    ["an unknown issuer", "unknownCa", /unable to get local issuer certificate/],
    ["TLS 1.1 only", "tls11", /alert protocol version/],
  ];
  for (const [what, name, reason] of refusals) {
    test(`${what}: the attempt fails, and its response says why`, async () => {
      const a = await firstAttempt(h, receivers[name].url);
      assert.equal(a.status, 2, `a failure: ${JSON.stringify(a)}`);
      assert.equal(a.responseStatusCode, 0, "no response: the handshake was refused");
      assert.match(a.response, reason);
      assert.equal(receivers[name].requests.length, 0, "nothing reached the receiver");
    });
  }
});

describe("HERALD_CA_FILE", () => {
  test("without it, the private CA is not trusted", async () => {
    const h = await startHerald({ retrySchedule: "1h" });
    try {
      const before = receivers.trusted.requests.length;
      const a = await firstAttempt(h, receivers.trusted.url);
      assert.equal(a.responseStatusCode, 0);
      assert.match(a.response, /unable to get local issuer certificate/);
      assert.equal(receivers.trusted.requests.length, before);
    } finally {
      await h.stop();
    }
  });

  test("a missing or malformed bundle stops herald at start with one line", async () => {
    const broken = path.join(dir, "broken.pem");
    writeFileSync(broken, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
    const key = path.join(dir, "trusted.key"); // PEM, but a key
    for (const [file, reason] of [
      [path.join(dir, "absent.pem"), /cannot read/],
      [broken, /not a valid certificate/],
      [key, /no PEM certificate/],
    ]) {
      const r = await runHerald(["serve", "--listen", "127.0.0.1:0", "--db", path.join(dir, "unused.db")], {
        env: { HERALD_CA_FILE: file, HERALD_ADMIN_TOKEN: "x".repeat(32) },
      });
      assert.equal(r.code, 2, `${file}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /HERALD_CA_FILE/);
      assert.match(r.stderr, reason);
    }
  });
});

describe("client certificates (mTLS)", () => {
  let h;
  before(async () => {
    h = await startHerald({ env: { HERALD_CA_FILE: path.join(dir, "ca.pem") }, retrySchedule: "1h" });
  });
  after(async () => h?.stop());

  const identity = (c) => ({ cert: c.cert.toString(), key: c.key.toString() });
  const call = async (method, p, body) => {
    const r = await rawRequest(h, method, p, { body });
    return r;
  };
  // Publishes one message to the endpoint and resolves with its attempt.
  async function attemptOf(app, ep, payload) {
    const msg = await h.svix.message.create(app.id, { eventType: "mtls.test", payload });
    return eventually(
      async () => (await h.svix.messageAttempt.listByEndpoint(app.id, ep, { withContent: true })).data.find((a) => a.msgId === msg.id),
      { timeoutMs: 8000, message: `an attempt of ${msg.id}` },
    );
  }

  test("the endpoint's certificate is presented; reads show its subject, fingerprint and expiry, never the key", async () => {
    const app = await h.svix.application.create({ name: "mtls", uid: uniq("mtls") });
    const created = await call("POST", `/api/v1/app/${app.id}/endpoint`, {
      url: receivers.mtls.url,
      clientCertificate: identity(certs.client),
    });
    assert.equal(created.status, 201, created.text);
    const x509 = new crypto.X509Certificate(certs.client.cert);
    const shown = {
      subject: "CN=acme-client",
      fingerprint: x509.fingerprint256.replaceAll(":", "").toLowerCase(),
      expiresAt: new Date(x509.validTo).toISOString(),
    };
    assert.deepEqual(created.json.clientCertificate, shown);
    const read = await call("GET", `/api/v1/app/${app.id}/endpoint/${created.json.id}`);
    assert.deepEqual(read.json.clientCertificate, shown);
    for (const r of [created, read]) assert.ok(!r.text.includes("PRIVATE KEY"), "the key is never shown");

    const a = await attemptOf(app, created.json.id, { m: 1 });
    assert.equal(a.status, 0, `delivered over mTLS: ${JSON.stringify(a)}`);
    const got = receivers.mtls.requests.find((r) => r.headers["webhook-id"] === a.msgId);
    assert.equal(got?.clientCn, "acme-client", "the receiver saw the endpoint's certificate");

    // The key is sealed at rest: its PEM text is nowhere in the store.
    const keyBody = certs.client.key.toString().split("\n")[1];
    assert.ok(keyBody.length > 20);
    assert.ok(!(await databaseCopy(h.dbPath)).includes(keyBody), "the private key is not stored in the clear");

    // Dropped with null: the receiver refuses the next delivery.
    const dropped = await call("PATCH", `/api/v1/app/${app.id}/endpoint/${created.json.id}`, { clientCertificate: null });
    assert.equal(dropped.status, 200, dropped.text);
    assert.equal(dropped.json.clientCertificate, null);
    const refused = await attemptOf(app, created.json.id, { m: 2 });
    assert.equal(refused.status, 2, `no certificate, no delivery: ${JSON.stringify(refused)}`);
    assert.equal(refused.responseStatusCode, 0);

    // Put back with PATCH; a PUT that leaves the field out keeps it (Svix's SDKs do not know it).
    const back = await call("PATCH", `/api/v1/app/${app.id}/endpoint/${created.json.id}`, {
      clientCertificate: identity(certs.client),
    });
    assert.deepEqual(back.json.clientCertificate, shown);
    const put = await h.svix.endpoint.upsert(app.id, created.json.id, { url: receivers.mtls.url, description: "kept" });
    assert.equal(put.description, "kept");
    assert.deepEqual((await call("GET", `/api/v1/app/${app.id}/endpoint/${created.json.id}`)).json.clientCertificate, shown);
    assert.equal((await attemptOf(app, created.json.id, { m: 3 })).status, 0, "delivered again");
  });

  test("no certificate, or one the receiver does not trust: the attempt fails at the handshake", async () => {
    const app = await h.svix.application.create({ name: "mtls-refused", uid: uniq("mtls-no") });
    const none = await h.svix.endpoint.create(app.id, { url: receivers.mtls.url });
    const stranger = await call("POST", `/api/v1/app/${app.id}/endpoint`, {
      url: receivers.mtls.url,
      clientCertificate: identity(certs.stranger),
    });
    assert.equal(stranger.status, 201, stranger.text);
    const before = receivers.mtls.requests.length;
    for (const ep of [none.id, stranger.json.id]) {
      const a = await attemptOf(app, ep, { ep });
      assert.equal(a.status, 2, `refused: ${JSON.stringify(a)}`);
      assert.equal(a.responseStatusCode, 0, "no response: the handshake failed");
      assert.ok(a.response.length > 0, "the response says why");
    }
    assert.equal(receivers.mtls.requests.length, before, "nothing reached the receiver");
  });

  test("a malformed, mismatched or expired certificate is a 422 at clientCertificate that changes nothing", async () => {
    const app = await h.svix.application.create({ name: "mtls-bad", uid: uniq("mtls-bad") });
    const ep = await h.svix.endpoint.create(app.id, { url: receivers.mtls.url, description: "before" });
    const path1 = `/api/v1/app/${app.id}/endpoint/${ep.id}`;
    const bad = [
      ["not an object", "PEM"],
      ["no key", { cert: certs.client.cert.toString() }],
      ["garbage certificate", { cert: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", key: certs.client.key.toString() }],
      ["another certificate's key", { cert: certs.client.cert.toString(), key: certs.stranger.key.toString() }],
      ["an expired certificate", identity(certs.expiredClient)],
      ["a key that is not PEM", { cert: certs.client.cert.toString(), key: "not a key" }],
    ];
    for (const [what, clientCertificate] of bad) {
      for (const [method, p] of [
        ["POST", `/api/v1/app/${app.id}/endpoint`],
        ["PATCH", path1],
      ]) {
        const r = await call(method, p, { url: receivers.mtls.url, description: "after", clientCertificate });
        assert.equal(r.status, 422, `${what} (${method}): ${r.text}`);
        assertValidationBody(r.json, what);
        assert.ok(
          r.json.detail.some((d) => JSON.stringify(d.loc) === JSON.stringify(["body", "clientCertificate"])),
          `${what}: the error is at clientCertificate: ${r.text}`,
        );
      }
    }
    const after = await call("GET", path1);
    assert.equal(after.json.description, "before", "nothing changed");
    assert.equal(after.json.clientCertificate, null);
    assert.equal((await h.svix.endpoint.list(app.id)).data.length, 1, "no endpoint was made");
  });
});
