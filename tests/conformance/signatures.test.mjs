// Signature schemes: real deliveries checked by the libraries their receivers use — stripe's
// constructEvent, @octokit/webhooks-methods' verify, Node's crypto.verify for Ed25519 (v1a) and
// standardwebhooks for the default — before and after rotations and scheme changes; a renamed
// signature header; resend, send-example and operational webhooks; and bad input refused.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { verifyWithFallback } from "@octokit/webhooks-methods";

import { ensureEventTypes, makeSecret, rawRequest, startHerald, startReceiver, uniq } from "./harness.mjs";
import {
  createEndpoint,
  ed25519Accepts,
  entriesOf,
  expect422,
  githubAccepts,
  makeEd25519Key,
  patchEndpoint,
  publicKeyOf,
  readEndpoint,
  secretOf,
  standardAccepts,
  stripeAccepts,
  verifyEd25519,
  verifyGithub,
  verifyStandard,
  verifyStripe,
} from "./schemes.mjs";

let h;
let rx;
let svix;

before(async () => {
  h = await startHerald();
  svix = h.svix;
  rx = await startReceiver();
});

after(async () => {
  await h?.stop();
  await rx?.close();
});

async function newApp(name) {
  return svix.application.create({ name, uid: uniq("sig") });
}

// Publishes one message to the app and resolves with the `n`-th request at `path`.
async function deliverOne(app, path, payload) {
  const before = rx.requests(path).length;
  const msg = await svix.message.create(app.id, { eventType: "sig.test", payload });
  const [req] = (await rx.waitFor(path, before + 1, 5000)).slice(before);
  assert.equal(req.headers["webhook-id"], msg.id, "the delivery is the message just published");
  return req;
}

describe("stripe", () => {
  test("constructEvent verifies deliveries, and either secret during a rotation's grace", async () => {
    const app = await newApp("stripe");
    const path = `/${uniq("stripe")}`;
    const ep = await createEndpoint(h, app.id, { url: rx.url(path), signatureScheme: "stripe" });
    assert.equal(ep.signatureScheme, "stripe");
    assert.equal(ep.signatureHeader, null);
    assert.equal((await readEndpoint(h, app.id, ep.id)).signatureScheme, "stripe");
    const oldSecret = await secretOf(h, app.id, ep.id);
    assert.match(oldSecret, /^whsec_/);

    const req = await deliverOne(app, path, { n: 1 });
    assert.deepEqual(verifyStripe(req, oldSecret), { n: 1 });
    assert.equal(req.headers["webhook-signature"], undefined, "a stripe delivery has no webhook-signature");
    assert.equal(req.headers["svix-signature"], undefined, "a stripe delivery has no svix-signature");
    assert.equal(stripeAccepts(req, makeSecret(32)), false, "another secret must not verify");

    await svix.endpoint.rotateSecret(app.id, ep.id, {});
    const newSecret = await secretOf(h, app.id, ep.id);
    assert.notEqual(newSecret, oldSecret);
    const rotated = await deliverOne(app, path, { n: 2 });
    assert.equal(rotated.headers["stripe-signature"].split(",").filter((p) => p.startsWith("v1=")).length, 2);
    verifyStripe(rotated, [oldSecret, newSecret], { what: "delivery during the grace period" });
  });

  test("a secret supplied on create keys the signature as Stripe keys it", async () => {
    const app = await newApp("stripe-given");
    const path = `/${uniq("stripe-given")}`;
    const secret = makeSecret(32);
    const ep = await createEndpoint(h, app.id, { url: rx.url(path), signatureScheme: "stripe", secret });
    assert.equal(await secretOf(h, app.id, ep.id), secret);
    verifyStripe(await deliverOne(app, path, { given: true }), secret);
  });
});

describe("github", () => {
  test("@octokit/webhooks-methods verify; after a rotation only the current secret signs", async () => {
    const app = await newApp("github");
    const path = `/${uniq("github")}`;
    const ep = await createEndpoint(h, app.id, { url: rx.url(path), signatureScheme: "github" });
    assert.equal(ep.signatureScheme, "github");
    const oldSecret = await secretOf(h, app.id, ep.id);
    const req = await deliverOne(app, path, { n: 1 });
    assert.deepEqual(await verifyGithub(req, oldSecret), { n: 1 });
    assert.equal(req.headers["webhook-signature"], undefined);
    assert.equal(await githubAccepts(req, makeSecret(32)), false, "another secret must not verify");

    await svix.endpoint.rotateSecret(app.id, ep.id, {});
    const newSecret = await secretOf(h, app.id, ep.id);
    const rotated = await deliverOne(app, path, { n: 2 });
    await verifyGithub(rotated, newSecret, { what: "delivery after the rotation" });
    assert.equal(await githubAccepts(rotated, oldSecret), false, "one signature: the old secret no longer verifies");
    // A receiver that rolls its secret verifies with the new one, falling back to the old.
    assert.ok(await verifyWithFallback(oldSecret, rotated.body, rotated.headers["x-hub-signature-256"], [newSecret]));
  });
});

describe("ed25519", () => {
  test("herald makes the key pair; the secret route shows only the whpk_ public key", async () => {
    const app = await newApp("ed");
    const path = `/${uniq("ed")}`;
    const ep = await createEndpoint(h, app.id, { url: rx.url(path), signatureScheme: "ed25519" });
    assert.equal(ep.signatureScheme, "ed25519");
    const whpk = await secretOf(h, app.id, ep.id);
    publicKeyOf(whpk); // the form: whpk_ + base64 of 32 bytes
    const req = await deliverOne(app, path, { n: 1 });
    assert.deepEqual(verifyEd25519(req, whpk), { n: 1 });
    assert.deepEqual(entriesOf(req, "v1"), [], "an ed25519 endpoint with one key sends no v1 entry");
    assert.equal(req.headers["svix-signature"], req.headers["webhook-signature"]);
    const tampered = { ...req, rawBody: Buffer.from(req.body.replace("1", "2")) };
    assert.equal(ed25519Accepts(tampered, publicKeyOf(whpk)), false, "a changed body must not verify");
    assert.equal(ed25519Accepts(req, makeEd25519Key().publicKey), false, "another key must not verify");

    // Rotated, the new key pair signs beside the old for the grace period.
    await svix.endpoint.rotateSecret(app.id, ep.id, {});
    const newWhpk = await secretOf(h, app.id, ep.id);
    assert.notEqual(newWhpk, whpk);
    const rotated = await deliverOne(app, path, { n: 2 });
    assert.equal(entriesOf(rotated, "v1a").length, 2);
    verifyEd25519(rotated, newWhpk);
    verifyEd25519(rotated, whpk);
  });

  test("a whsk_ key supplied through the svix SDK signs and implies ed25519", async () => {
    const app = await newApp("ed-given");
    const path = `/${uniq("ed-given")}`;
    const key = makeEd25519Key();
    const ep = await svix.endpoint.create(app.id, { url: rx.url(path), secret: key.whsk });
    assert.equal((await readEndpoint(h, app.id, ep.id)).signatureScheme, "ed25519");
    assert.equal(await secretOf(h, app.id, ep.id), key.whpk, "the secret route shows the public half only");
    verifyEd25519(await deliverOne(app, path, { given: true }), key.whpk);

    // Rotating to another supplied key: it takes over, the old one still signs in its grace.
    const next = makeEd25519Key();
    await svix.endpoint.rotateSecret(app.id, ep.id, { key: next.whsk });
    assert.equal(await secretOf(h, app.id, ep.id), next.whpk);
    const rotated = await deliverOne(app, path, { rotated: true });
    verifyEd25519(rotated, next.whpk);
    verifyEd25519(rotated, key.whpk);
  });
});

describe("scheme changes", () => {
  test("standard → stripe → github → ed25519 → standard, each verified by its own library", async () => {
    const app = await newApp("change");
    const path = `/${uniq("change")}`;
    const ep = await svix.endpoint.create(app.id, { url: rx.url(path), description: "d0" });
    const first = await secretOf(h, app.id, ep.id);
    verifyStandard(await deliverOne(app, path, { step: "standard" }), first);

    assert.equal((await patchEndpoint(h, app.id, ep.id, { signatureScheme: "stripe" })).signatureScheme, "stripe");
    assert.equal(await secretOf(h, app.id, ep.id), first, "an HMAC scheme keeps the HMAC secret");
    verifyStripe(await deliverOne(app, path, { step: "stripe" }), first);

    // A PUT through the SDK, which knows nothing of schemes, keeps the scheme.
    await svix.endpoint.upsert(app.id, ep.id, { url: rx.url(path), description: "d1" });
    const put = await readEndpoint(h, app.id, ep.id);
    assert.equal(put.signatureScheme, "stripe");
    assert.equal(put.description, "d1");
    verifyStripe(await deliverOne(app, path, { step: "stripe after PUT" }), first);

    await patchEndpoint(h, app.id, ep.id, { signatureScheme: "github" });
    await verifyGithub(await deliverOne(app, path, { step: "github" }), first);

    // To ed25519: herald makes a key pair; the HMAC secret signs on (v1) for its grace, so
    // receivers still checking v1 keep working while they move to the public key.
    const changed = await patchEndpoint(h, app.id, ep.id, { signatureScheme: "ed25519" });
    assert.equal(changed.signatureScheme, "ed25519");
    const whpk = await secretOf(h, app.id, ep.id);
    const ed = await deliverOne(app, path, { step: "ed25519" });
    verifyEd25519(ed, whpk);
    verifyStandard(ed, first, { what: "the v1 entry of the old secret" });

    // Back to standard: a new HMAC secret; standardwebhooks verifies with it.
    await patchEndpoint(h, app.id, ep.id, { signatureScheme: "standard" });
    const last = await secretOf(h, app.id, ep.id);
    assert.match(last, /^whsec_/);
    assert.notEqual(last, first);
    const back = await deliverOne(app, path, { step: "standard again" });
    verifyStandard(back, last);
    assert.equal((await readEndpoint(h, app.id, ep.id)).signatureScheme, "standard");
  });

  test("a whsec_ secret given to an ed25519 endpoint takes it back to standard at once", async () => {
    const app = await newApp("back");
    const path = `/${uniq("back")}`;
    const ep = await createEndpoint(h, app.id, { url: rx.url(path), signatureScheme: "ed25519" });
    const secret = makeSecret(32);
    const patched = await patchEndpoint(h, app.id, ep.id, { secret });
    assert.equal(patched.signatureScheme, "standard");
    assert.equal(await secretOf(h, app.id, ep.id), secret);
    const req = await deliverOne(app, path, { n: 1 });
    verifyStandard(req, secret);
    assert.deepEqual(entriesOf(req, "v1a"), [], "a given key takes over with no grace");
  });
});

describe("signatureHeader", () => {
  test("renames the header that carries the signature; the id and timestamp headers stay", async () => {
    const app = await newApp("renamed");
    const path = `/${uniq("renamed")}`;
    const ep = await createEndpoint(h, app.id, {
      url: rx.url(path),
      signatureScheme: "github",
      signatureHeader: "X-Acme-Signature",
    });
    assert.equal(ep.signatureHeader, "X-Acme-Signature");
    const secret = await secretOf(h, app.id, ep.id);
    const req = await deliverOne(app, path, { n: 1 });
    await verifyGithub(req, secret, { header: "x-acme-signature" });
    assert.equal(req.headers["x-hub-signature-256"], undefined, "the default header is not sent too");

    // A standard endpoint under a renamed header: the v1 list moves there.
    await patchEndpoint(h, app.id, ep.id, { signatureScheme: "standard" });
    const std = await deliverOne(app, path, { n: 2 });
    assert.equal(std.headers["webhook-signature"], undefined);
    assert.equal(std.headers["svix-signature"], undefined);
    const moved = { ...std, headers: { ...std.headers, "webhook-signature": std.headers["x-acme-signature"] } };
    verifyStandard(moved, secret, { what: "the v1 list under X-Acme-Signature" });

    // null gives the scheme's own header back.
    assert.equal((await patchEndpoint(h, app.id, ep.id, { signatureHeader: null })).signatureHeader, null);
    const plain = await deliverOne(app, path, { n: 3 });
    assert.equal(plain.headers["x-acme-signature"], undefined);
    verifyStandard(plain, secret);
  });
});

describe("resend and send-example", () => {
  test("sign with the endpoint's scheme", async () => {
    await ensureEventTypes(svix, ["sig.example"]);
    const app = await newApp("resend");
    const stripePath = `/${uniq("resend-stripe")}`;
    const edPath = `/${uniq("resend-ed")}`;
    const stripeEp = await createEndpoint(h, app.id, { url: rx.url(stripePath), signatureScheme: "stripe" });
    const edEp = await createEndpoint(h, app.id, { url: rx.url(edPath), signatureScheme: "ed25519" });
    const stripeSecret = await secretOf(h, app.id, stripeEp.id);
    const whpk = await secretOf(h, app.id, edEp.id);

    const msg = await svix.message.create(app.id, { eventType: "sig.test", payload: { resend: 1 } });
    await rx.waitFor(stripePath, 1);
    await rx.waitFor(edPath, 1);
    await svix.messageAttempt.resend(app.id, msg.id, stripeEp.id);
    await svix.messageAttempt.resend(app.id, msg.id, edEp.id);
    const [, stripeResent] = await rx.waitFor(stripePath, 2);
    const [, edResent] = await rx.waitFor(edPath, 2);
    assert.equal(stripeResent.headers["webhook-id"], msg.id);
    assert.deepEqual(verifyStripe(stripeResent, stripeSecret, { what: "resent" }), { resend: 1 });
    assert.deepEqual(verifyEd25519(edResent, whpk, { what: "resent" }), { resend: 1 });

    const example = await svix.endpoint.sendExample(app.id, stripeEp.id, { eventType: "sig.example" });
    const [, , sent] = await rx.waitFor(stripePath, 3);
    assert.equal(sent.headers["webhook-id"], example.id);
    assert.equal(verifyStripe(sent, stripeSecret, { what: "send-example" }).type, "sig.example");
    await svix.endpoint.sendExample(app.id, edEp.id, { eventType: "sig.example" });
    const [, , edSent] = await rx.waitFor(edPath, 3);
    verifyEd25519(edSent, whpk, { what: "send-example" });
  });
});

describe("operational webhooks", () => {
  // An endpoint answering 410 is disabled, which is announced on the operator channel.
  async function disabledEvent(other, opsRx) {
    const app = await other.svix.application.create({ name: "ops", uid: uniq("ops") });
    const path = `/${uniq("gone")}`;
    rx.respond(path, [410]);
    const ep = await other.svix.endpoint.create(app.id, { url: rx.url(path) });
    await other.svix.message.create(app.id, { eventType: "x", payload: { ops: 1 } });
    const reqs = await opsRx.waitFor("/ops", 1, 5000);
    const req = reqs.find((r) => JSON.parse(r.body).data?.endpointId === ep.id);
    assert.ok(req, `no endpoint.disabled for ${ep.id}: ${reqs.map((r) => r.body).join("\n")}`);
    assert.equal(JSON.parse(req.body).type, "endpoint.disabled");
    return req;
  }

  for (const scheme of ["stripe", "github", "ed25519"]) {
    test(`HERALD_OPERATOR_SIGNATURE_SCHEME=${scheme} signs them so`, async () => {
      const opsRx = await startReceiver();
      const key = scheme === "ed25519" ? makeEd25519Key() : null;
      const secret = key ? key.whsk : makeSecret(32);
      const other = await startHerald({
        env: {
          HERALD_OPERATOR_URL: opsRx.url("/ops"),
          HERALD_OPERATOR_SECRET: secret,
          HERALD_OPERATOR_SIGNATURE_SCHEME: scheme,
        },
      });
      try {
        const req = await disabledEvent(other, opsRx);
        if (scheme === "stripe") verifyStripe(req, secret, { what: "operational webhook" });
        if (scheme === "github") await verifyGithub(req, secret, { what: "operational webhook" });
        if (scheme === "ed25519") verifyEd25519(req, key.whpk, { what: "operational webhook" });
        assert.equal(standardAccepts(req, key ? makeSecret(32) : secret), false, "not signed the standard way");
      } finally {
        await other.stop();
        await opsRx.close();
      }
    });
  }
});

describe("bad input", () => {
  test("on create: a 422 naming the field, and no endpoint made", async () => {
    const app = await newApp("bad-create");
    const url = rx.url(`/${uniq("bad")}`);
    const base = `/api/v1/app/${app.id}/endpoint`;
    const key = makeEd25519Key();
    const seed = Buffer.from(key.whsk.slice(5), "base64").subarray(0, 32);
    const otherPublic = Buffer.from(makeEd25519Key().whpk.slice(5), "base64");
    const cases = [
      [{ url, signatureScheme: "hmac" }, "signatureScheme"],
      [{ url, signatureScheme: "STRIPE" }, "signatureScheme"],
      [{ url, signatureScheme: 7 }, "signatureScheme"],
      [{ url, secret: "whsk_notbase64!!" }, "secret"],
      [{ url, secret: "whsk_" + seed.toString("base64") }, "secret"], // the seed alone
      [{ url, secret: "whsk_" + Buffer.concat([seed, otherPublic]).toString("base64") }, "secret"],
      [{ url, secret: key.whpk }, "secret"], // a public key signs nothing
      [{ url, secret: key.whsk, signatureScheme: "stripe" }, "secret"],
      [{ url, secret: makeSecret(32), signatureScheme: "ed25519" }, "secret"],
      [{ url, secret: "whsec_" + Buffer.alloc(25, 7).toString("base64").replace(/=+$/, ""), signatureScheme: "stripe" }, "secret"],
      [{ url, signatureHeader: "content-length" }, "signatureHeader"],
      [{ url, signatureHeader: "Connection" }, "signatureHeader"],
      [{ url, signatureHeader: "Transfer-Encoding" }, "signatureHeader"],
      [{ url, signatureHeader: "Keep-Alive" }, "signatureHeader"],
      [{ url, signatureHeader: "webhook-id" }, "signatureHeader"],
      [{ url, signatureHeader: "svix-timestamp" }, "signatureHeader"],
      [{ url, signatureHeader: "X Acme" }, "signatureHeader"],
      [{ url, signatureHeader: "" }, "signatureHeader"],
      [{ url, signatureScheme: "github", headers: { "X-Hub-Signature-256": "forged" } }, "headers"],
      [{ url, signatureHeader: "X-Sig", headers: { "x-sig": "forged" } }, "signatureHeader"],
    ];
    for (const [body, field] of cases) await expect422(h, "POST", base, body, field);
    const list = await svix.endpoint.list(app.id);
    assert.deepEqual(list.data, [], "no bad create may leave an endpoint behind");
  });

  test("on update, patch, rotate and headers: a 422 that changes nothing", async () => {
    const app = await newApp("bad-change");
    const path = `/${uniq("bad-change")}`;
    const ep = await createEndpoint(h, app.id, {
      url: rx.url(path),
      signatureScheme: "stripe",
      signatureHeader: "X-Acme-Signature",
      headers: { "X-Tenant": "t1" },
    });
    const one = `/api/v1/app/${app.id}/endpoint/${ep.id}`;
    const secret = await secretOf(h, app.id, ep.id);
    const before = await readEndpoint(h, app.id, ep.id);
    const key = makeEd25519Key();

    await expect422(h, "PATCH", one, { signatureScheme: "rsa" }, "signatureScheme");
    await expect422(h, "PATCH", one, { signatureScheme: "stripe", secret: key.whsk }, "secret");
    await expect422(h, "PATCH", one, { signatureScheme: "github", secret: key.whsk }, "secret");
    await expect422(h, "PATCH", one, { signatureHeader: "Host" }, "signatureHeader");
    await expect422(h, "PATCH", one, { signatureHeader: "Upgrade" }, "signatureHeader");
    await expect422(h, "PATCH", one, { headers: { "X-Acme-Signature": "forged" } }, "headers");
    await expect422(h, "PATCH", one, { signatureHeader: "X-Tenant" }, "signatureHeader");
    await expect422(h, "PATCH", one, { signatureScheme: "ed25519", secret: makeSecret(32) }, "secret");
    await expect422(h, "PUT", one, { url: rx.url(path), signatureScheme: "none" }, "signatureScheme");
    await expect422(h, "PUT", one, { url: rx.url(path), signatureHeader: "TE" }, "signatureHeader");
    await expect422(h, "POST", `${one}/secret/rotate`, { key: "whsk_AAAA" }, "key");
    await expect422(h, "POST", `${one}/secret/rotate`, { key: key.whpk }, "key");
    await expect422(h, "PUT", `${one}/headers`, { headers: { "x-acme-signature": "forged" } }, "headers");
    await expect422(h, "PATCH", `${one}/headers`, { headers: { "X-ACME-SIGNATURE": "forged" } }, "headers");

    const after = await readEndpoint(h, app.id, ep.id);
    assert.deepEqual(after, before, "a refused change must leave the endpoint as it was");
    assert.equal(await secretOf(h, app.id, ep.id), secret, "a refused change must leave the secret");
    const headers = await rawRequest(h, "GET", `${one}/headers`);
    assert.deepEqual(headers.json.headers, { "X-Tenant": "t1" });
    const req = await deliverOne(app, path, { still: "stripe" });
    verifyStripe(req, secret, { header: "x-acme-signature", what: "after the refused changes" });
    assert.equal(req.headers["x-tenant"], "t1");
  });
});
