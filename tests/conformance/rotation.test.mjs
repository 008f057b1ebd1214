// Secret rotation: after a rotation deliveries carry two v1 signatures, one per valid secret,
// and verify with the old and the new secret in both libraries.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  makeSecret,
  signaturesOf,
  startHerald,
  startReceiver,
  uniq,
  verifiesWith,
  verifyDelivery,
} from "./harness.mjs";

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

async function setup(name) {
  const app = await svix.application.create({ name, uid: uniq("rot") });
  const path = `/${uniq(name)}`;
  const ep = await svix.endpoint.create(app.id, { url: rx.url(path) });
  const { key: oldKey } = await svix.endpoint.getSecret(app.id, ep.id);
  return { app, ep, path, oldKey };
}

function checkBothSecrets(req, oldKey, newKey, msgId, payload) {
  const sigs = signaturesOf(req);
  assert.equal(
    sigs.length,
    2,
    `webhook-signature should hold two space-separated v1 signatures, got "${req.headers["webhook-signature"]}"`,
  );
  assert.ok(sigs.every((s) => s.version === "v1"), "both entries are v1");
  assert.notEqual(sigs[0].sig, sigs[1].sig, "the two signatures come from different secrets");
  verifyDelivery([oldKey, newKey], req, { msgId, payload, what: "delivery after rotation" });
  assert.equal(verifiesWith(oldKey, req), true, "verifies with the OLD secret (both libraries)");
  assert.equal(verifiesWith(newKey, req), true, "verifies with the NEW secret (both libraries)");
  assert.equal(verifiesWith(makeSecret(24), req), false, "must not verify with an unrelated secret");
}

describe("secret rotation", () => {
  test("before any rotation there is exactly one signature", async () => {
    const { app, path, oldKey } = await setup("rot-none");
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload: { n: 0 } });
    const [r] = await rx.waitFor(path, 1);
    verifyDelivery(oldKey, r, { msgId: msg.id, payload: { n: 0 } });
    assert.equal(signaturesOf(r).length, 1, `one secret → one signature: "${r.headers["webhook-signature"]}"`);
  });

  test("rotate with a generated key: old and new secrets both verify", async () => {
    const { app, ep, path, oldKey } = await setup("rot-gen");
    await svix.endpoint.rotateSecret(app.id, ep.id, {});
    const { key: newKey } = await svix.endpoint.getSecret(app.id, ep.id);
    assert.ok(newKey.startsWith("whsec_"), `new secret format: ${newKey}`);
    assert.notEqual(newKey, oldKey, "rotation must produce a new secret");

    const payload = { rotated: true };
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload });
    const [r] = await rx.waitFor(path, 1);
    checkBothSecrets(r, oldKey, newKey, msg.id, payload);
  });

  test("rotate with an explicit key: getSecret returns it; old and new both verify", async () => {
    const { app, ep, path, oldKey } = await setup("rot-explicit");
    const explicit = makeSecret(32);
    await svix.endpoint.rotateSecret(app.id, ep.id, { key: explicit });
    const { key: newKey } = await svix.endpoint.getSecret(app.id, ep.id);
    assert.equal(newKey, explicit, "the explicit key must become the current secret");

    const payload = { explicit: "key", ünïcode: "✓" };
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload });
    const [r] = await rx.waitFor(path, 1);
    checkBothSecrets(r, oldKey, newKey, msg.id, payload);
  });

  test("POST .../secret/rotate answers 204", async () => {
    const { app, ep } = await setup("rot-204");
    const res = await fetch(`${h.url}/api/v1/app/${app.id}/endpoint/${ep.id}/secret/rotate`, {
      method: "POST",
      headers: { authorization: `Bearer ${h.token}`, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(res.status, 204, `rotate: expected 204, got ${res.status} ${await res.text()}`);
  });

  test("rotating twice: deliveries verify with every secret still in its grace period", async () => {
    const { app, ep, path, oldKey } = await setup("rot-twice");
    await svix.endpoint.rotateSecret(app.id, ep.id, {});
    const { key: mid } = await svix.endpoint.getSecret(app.id, ep.id);
    await svix.endpoint.rotateSecret(app.id, ep.id, {});
    const { key: latest } = await svix.endpoint.getSecret(app.id, ep.id);
    assert.equal(new Set([oldKey, mid, latest]).size, 3, "three distinct secrets");
    const msg = await svix.message.create(app.id, { eventType: "user.created", payload: { twice: 1 } });
    const [r] = await rx.waitFor(path, 1);
    verifyDelivery([oldKey, mid, latest], r, { msgId: msg.id, payload: { twice: 1 } });
  });
});
