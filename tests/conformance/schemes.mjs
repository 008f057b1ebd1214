// Signature schemes: endpoints created with a scheme over raw HTTP (the svix SDK drops fields
// it does not know), and each scheme's deliveries checked with the library its receivers use.
import assert from "node:assert/strict";
import crypto from "node:crypto";

import Stripe from "stripe";
import { verify as githubVerify } from "@octokit/webhooks-methods";

import { StdWebhook, assertJsonResponse, rawRequest } from "./harness.mjs";

/** POST an endpoint with herald's signing fields; returns the created endpoint's JSON. */
export async function createEndpoint(h, appId, body) {
  const res = await rawRequest(h, "POST", `/api/v1/app/${appId}/endpoint`, { body });
  assert.equal(res.status, 201, `create endpoint ${JSON.stringify(body)}: ${res.status} ${res.text}`);
  return res.json;
}

/** GET an endpoint as JSON (with signatureScheme and signatureHeader). */
export async function readEndpoint(h, appId, epId) {
  const res = await rawRequest(h, "GET", `/api/v1/app/${appId}/endpoint/${epId}`);
  assert.equal(res.status, 200, `read endpoint ${epId}: ${res.status} ${res.text}`);
  return res.json;
}

/** PATCH an endpoint; returns the updated endpoint's JSON. */
export async function patchEndpoint(h, appId, epId, body) {
  const res = await rawRequest(h, "PATCH", `/api/v1/app/${appId}/endpoint/${epId}`, { body });
  assert.equal(res.status, 200, `patch endpoint ${JSON.stringify(body)}: ${res.status} ${res.text}`);
  return res.json;
}

/** The endpoint's secret as the secret route returns it. */
export async function secretOf(h, appId, epId) {
  const res = await rawRequest(h, "GET", `/api/v1/app/${appId}/endpoint/${epId}/secret`);
  assert.equal(res.status, 200, `secret of ${epId}: ${res.status} ${res.text}`);
  return res.json.key;
}

/**
 * Send `method path body` and expect a 422 whose detail names `field` (loc ends with it).
 * Returns the response.
 */
export async function expect422(h, method, urlPath, body, field) {
  const res = await rawRequest(h, method, urlPath, { body });
  const what = `${method} ${urlPath} ${JSON.stringify(body)}`;
  assert.equal(res.status, 422, `${what}: expected 422, got ${res.status} ${res.text}`);
  assertJsonResponse(res, what);
  const locs = (res.json?.detail ?? []).map((d) => d.loc?.at(-1));
  assert.ok(locs.includes(field), `${what}: the 422 should name ${field}, got ${res.text}`);
  return res;
}

/** A new Ed25519 key pair: the whsk_ secret herald accepts and the public key object. */
export function makeEd25519Key() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const seed = Buffer.from(jwk.d, "base64url");
  const pub = Buffer.from(jwk.x, "base64url");
  return {
    whsk: "whsk_" + Buffer.concat([seed, pub]).toString("base64"),
    whpk: "whpk_" + pub.toString("base64"),
    publicKey,
  };
}

/** The key object of a whpk_ public key as the secret route shows it. */
export function publicKeyOf(whpk) {
  assert.match(whpk, /^whpk_[A-Za-z0-9+/]{43}=$/, `not a whpk_ public key: ${whpk}`);
  const x = Buffer.from(whpk.slice(5), "base64");
  assert.equal(x.length, 32, "an Ed25519 public key is 32 bytes");
  return crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: x.toString("base64url") }, format: "jwk" });
}

/** The id and timestamp headers every delivery carries, whatever its scheme. */
export function checkIdHeaders(req, what) {
  const h = req.headers;
  for (const name of ["webhook-id", "webhook-timestamp", "svix-id", "svix-timestamp"]) {
    assert.ok(h[name], `${what}: missing ${name}; headers were ${JSON.stringify(h)}`);
  }
  assert.equal(h["svix-id"], h["webhook-id"], `${what}: svix-id and webhook-id differ`);
  assert.match(h["webhook-timestamp"], /^\d+$/, `${what}: webhook-timestamp must be unix seconds`);
  const age = Math.abs(Date.now() / 1000 - Number(h["webhook-timestamp"]));
  assert.ok(age < 60, `${what}: webhook-timestamp is ${age} s off`);
}

/**
 * Stripe: constructEvent from the stripe package, with each of `secrets`. Returns the event.
 * `header` names the signature's header when it was renamed.
 */
export function verifyStripe(req, secrets, { header = "stripe-signature", what = "stripe delivery" } = {}) {
  checkIdHeaders(req, what);
  const sig = req.headers[header];
  assert.match(sig ?? "", /^t=\d+(,v1=[0-9a-f]{64})+$/, `${what}: ${header} is "${sig}"`);
  assert.equal(sig.slice(2, sig.indexOf(",")), req.headers["webhook-timestamp"], `${what}: t= is not the timestamp`);
  let event;
  for (const secret of [secrets].flat()) {
    try {
      event = Stripe.webhooks.constructEvent(req.rawBody, sig, secret);
    } catch (e) {
      assert.fail(`${what}: stripe constructEvent with ${secret.slice(0, 10)}… failed: ${e.message}; header "${sig}"`);
    }
  }
  assert.deepEqual(event, JSON.parse(req.body), `${what}: the event is not the body`);
  return event;
}

/** True if Stripe's constructEvent accepts `req` with `secret`. */
export function stripeAccepts(req, secret, header = "stripe-signature") {
  try {
    Stripe.webhooks.constructEvent(req.rawBody, req.headers[header], secret);
    return true;
  } catch {
    return false;
  }
}

/** GitHub: verify from @octokit/webhooks-methods. Resolves true or false. */
export async function githubAccepts(req, secret, header = "x-hub-signature-256") {
  return githubVerify(secret, req.body, req.headers[header] ?? "");
}

/** GitHub: asserts `req` verifies with `secret`, and is a GitHub-shaped delivery. */
export async function verifyGithub(req, secret, { header = "x-hub-signature-256", what = "github delivery" } = {}) {
  checkIdHeaders(req, what);
  assert.match(req.headers[header] ?? "", /^sha256=[0-9a-f]{64}$/, `${what}: ${header} is "${req.headers[header]}"`);
  assert.ok(await githubAccepts(req, secret, header), `${what}: @octokit/webhooks-methods verify failed`);
  return JSON.parse(req.body);
}

/** The signatures of one version ("v1", "v1a") in a Standard Webhooks signature header. */
export function entriesOf(req, version, header = "webhook-signature") {
  return (req.headers[header] ?? "")
    .split(" ")
    .filter((s) => s.startsWith(`${version},`))
    .map((s) => s.slice(version.length + 1));
}

/** True if one v1a entry is an Ed25519 signature of id.timestamp.body under `publicKey`. */
export function ed25519Accepts(req, publicKey, header = "webhook-signature") {
  const signed = Buffer.concat([
    Buffer.from(`${req.headers["webhook-id"]}.${req.headers["webhook-timestamp"]}.`),
    req.rawBody,
  ]);
  return entriesOf(req, "v1a", header).some((sig) =>
    crypto.verify(null, signed, publicKey, Buffer.from(sig, "base64")),
  );
}

/** Ed25519: asserts a v1a entry verifies with Node's crypto.verify under the whpk_ key. */
export function verifyEd25519(req, whpk, { header = "webhook-signature", what = "ed25519 delivery" } = {}) {
  checkIdHeaders(req, what);
  assert.ok(entriesOf(req, "v1a", header).length >= 1, `${what}: no v1a entry in "${req.headers[header]}"`);
  assert.ok(ed25519Accepts(req, publicKeyOf(whpk), header), `${what}: no v1a entry verifies under ${whpk}`);
  return JSON.parse(req.body);
}

/** Standard: asserts standardwebhooks verifies `req` with `secret`. */
export function verifyStandard(req, secret, { what = "standard delivery" } = {}) {
  checkIdHeaders(req, what);
  try {
    return new StdWebhook(secret).verify(req.rawBody, req.headers);
  } catch (e) {
    assert.fail(`${what}: standardwebhooks verify failed: ${e.message}; header "${req.headers["webhook-signature"]}"`);
  }
}

/** True if standardwebhooks verifies `req` with `secret`. */
export function standardAccepts(req, secret) {
  try {
    new StdWebhook(secret).verify(req.rawBody, req.headers);
    return true;
  } catch {
    return false;
  }
}
