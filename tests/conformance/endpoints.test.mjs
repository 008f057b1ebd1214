// Endpoints (CRUD, headers, secrets) and list pagination, driven through the official svix SDK.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  assertRecentDate,
  collectAll,
  ensureEventTypes,
  expectApiError,
  makeSecret,
  rawRequest,
  startHerald,
  startReceiver,
  uniq,
} from "./harness.mjs";

let h;
let rx;
let svix;

before(async () => {
  h = await startHerald();
  svix = h.svix;
  rx = await startReceiver();
  await ensureEventTypes(svix, ["user.created", "invoice.paid"]);
});

after(async () => {
  await h?.stop();
  await rx?.close();
});

const lowerKeys = (o) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k.toLowerCase(), v]));

describe("endpoints", () => {
  test("create with every field, then get by id and by uid", async () => {
    const app = await svix.application.create({ name: "ep-crud", uid: uniq("app") });
    const epUid = uniq("ep");
    const url = rx.url("/endpoints/crud");
    const ep = await svix.endpoint.create(app.id, {
      url,
      description: "primary receiver",
      eventTypes: ["user.created"],
      channels: ["project-1"],
      metadata: { owner: "team-a" },
      uid: epUid,
      headers: { "X-Conformance": "yes" },
    });
    assert.ok(ep.id?.startsWith("ep_"), `endpoint id should start with "ep_", got ${ep.id}`);
    assert.equal(ep.url, url);
    assert.equal(ep.description, "primary receiver");
    assert.deepEqual(ep.eventTypes, ["user.created"]);
    assert.deepEqual(ep.channels, ["project-1"]);
    assert.deepEqual(ep.metadata, { owner: "team-a" });
    assert.equal(ep.uid, epUid);
    assert.equal(ep.disabled, false, "a new endpoint is enabled");
    assertRecentDate(ep.createdAt, "endpoint.createdAt");
    assertRecentDate(ep.updatedAt, "endpoint.updatedAt");

    const byId = await svix.endpoint.get(app.id, ep.id);
    const byUid = await svix.endpoint.get(app.id, epUid);
    for (const [what, got] of [["by id", byId], ["by uid", byUid]]) {
      assert.equal(got.id, ep.id, `get ${what}`);
      assert.equal(got.url, url, `get ${what}: url`);
      assert.equal(got.description, "primary receiver", `get ${what}: description`);
      assert.deepEqual(got.eventTypes, ["user.created"], `get ${what}: eventTypes`);
      assert.deepEqual(got.channels, ["project-1"], `get ${what}: channels`);
      assert.deepEqual(got.metadata, { owner: "team-a" }, `get ${what}: metadata`);
    }

    const headers = await svix.endpoint.getHeaders(app.id, ep.id);
    assert.equal(
      lowerKeys(headers.headers)["x-conformance"],
      "yes",
      `headers given at create should be returned by GET .../headers, got ${JSON.stringify(headers)}`,
    );
  });

  test("list returns the app's endpoints", async () => {
    const app = await svix.application.create({ name: "ep-list" });
    const a = await svix.endpoint.create(app.id, { url: rx.url("/endpoints/list-a") });
    const b = await svix.endpoint.create(app.id, { url: rx.url("/endpoints/list-b") });
    const page = await svix.endpoint.list(app.id);
    assert.deepEqual(
      page.data.map((e) => e.id).sort(),
      [a.id, b.id].sort(),
      "list must return exactly the app's two endpoints",
    );
    assert.equal(page.done, true);
  });

  test("update (PUT) changes the url", async () => {
    const app = await svix.application.create({ name: "ep-put" });
    const ep = await svix.endpoint.create(app.id, { url: rx.url("/endpoints/put-old"), description: "d" });
    const newUrl = rx.url("/endpoints/put-new");
    const updated = await svix.endpoint.upsert(app.id, ep.id, { url: newUrl, description: "d2" });
    assert.equal(updated.id, ep.id, "PUT must keep the id");
    assert.equal(updated.url, newUrl);
    assert.equal(updated.description, "d2");
    const got = await svix.endpoint.get(app.id, ep.id);
    assert.equal(got.url, newUrl, "PUT url must be persisted");
  });

  test("patch disabled", async () => {
    const app = await svix.application.create({ name: "ep-patch" });
    const ep = await svix.endpoint.create(app.id, { url: rx.url("/endpoints/patch"), description: "keep me" });
    const patched = await svix.endpoint.patch(app.id, ep.id, { disabled: true });
    assert.equal(patched.disabled, true);
    assert.equal(patched.url, ep.url, "patch must not change the url");
    assert.equal(patched.description, "keep me", "patch must not change the description");
    const got = await svix.endpoint.get(app.id, ep.id);
    assert.equal(got.disabled, true, "disabled must be persisted");
    const back = await svix.endpoint.patch(app.id, ep.id, { disabled: false });
    assert.equal(back.disabled, false);
  });

  test("delete then get → 404", async () => {
    const app = await svix.application.create({ name: "ep-del" });
    const ep = await svix.endpoint.create(app.id, { url: rx.url("/endpoints/del") });
    await svix.endpoint.delete(app.id, ep.id);
    await expectApiError(svix.endpoint.get(app.id, ep.id), 404, "not_found", "get deleted endpoint");
    const page = await svix.endpoint.list(app.id);
    assert.equal(page.data.length, 0, "deleted endpoint must not be listed");
  });

  test("duplicate endpoint uid in one app → 409", async () => {
    const app = await svix.application.create({ name: "ep-dup" });
    const uid = uniq("ep");
    await svix.endpoint.create(app.id, { url: rx.url("/endpoints/dup"), uid });
    await expectApiError(
      svix.endpoint.create(app.id, { url: rx.url("/endpoints/dup2"), uid }),
      409,
      undefined,
      "duplicate endpoint uid",
    );
    assert.equal((await svix.endpoint.list(app.id)).data.length, 1, "the duplicate must not be created");
  });

  test("getSecret returns a whsec_ key of 24–64 bytes", async () => {
    const app = await svix.application.create({ name: "ep-secret" });
    const ep = await svix.endpoint.create(app.id, { url: rx.url("/endpoints/secret") });
    const { key } = await svix.endpoint.getSecret(app.id, ep.id);
    assert.ok(key?.startsWith("whsec_"), `secret should start with whsec_, got ${key}`);
    const raw = Buffer.from(key.slice(6), "base64");
    assert.ok(raw.length >= 24 && raw.length <= 64, `secret should hold 24–64 bytes, has ${raw.length}`);
    assert.equal(raw.toString("base64"), key.slice(6), "secret must be canonical base64");
    const again = await svix.endpoint.getSecret(app.id, ep.id);
    assert.equal(again.key, key, "secret is stable across reads");
    const other = await svix.endpoint.create(app.id, { url: rx.url("/endpoints/secret2") });
    assert.notEqual((await svix.endpoint.getSecret(app.id, other.id)).key, key, "each endpoint gets its own secret");
  });

  test("explicit secret at create is kept", async () => {
    const app = await svix.application.create({ name: "ep-explicit-secret" });
    const secret = makeSecret(24);
    const ep = await svix.endpoint.create(app.id, { url: rx.url("/endpoints/explicit"), secret });
    const { key } = await svix.endpoint.getSecret(app.id, ep.id);
    assert.equal(key, secret, "the secret given at creation must be returned unchanged");
    const secret32 = makeSecret(32);
    const ep2 = await svix.endpoint.create(app.id, { url: rx.url("/endpoints/explicit2"), secret: secret32 });
    assert.equal((await svix.endpoint.getSecret(app.id, ep2.id)).key, secret32);
  });

  test("setHeaders / getHeaders", async () => {
    const app = await svix.application.create({ name: "ep-headers" });
    const ep = await svix.endpoint.create(app.id, { url: rx.url("/endpoints/headers") });
    await svix.endpoint.setHeaders(app.id, ep.id, { headers: { "X-One": "1", "X-Two": "two" } });
    const got = await svix.endpoint.getHeaders(app.id, ep.id);
    const hdrs = lowerKeys(got.headers);
    assert.equal(hdrs["x-one"], "1", `headers: ${JSON.stringify(got)}`);
    assert.equal(hdrs["x-two"], "two", `headers: ${JSON.stringify(got)}`);
    // PUT replaces the whole set
    await svix.endpoint.setHeaders(app.id, ep.id, { headers: { "X-Three": "3" } });
    const replaced = lowerKeys((await svix.endpoint.getHeaders(app.id, ep.id)).headers);
    assert.equal(replaced["x-three"], "3");
    assert.equal(replaced["x-one"], undefined, "PUT headers replaces the previous set");

    // PATCH adds and changes; a null value or deleteHeaders (any case) removes.
    await svix.endpoint.setHeaders(app.id, ep.id, { headers: { "X-A": "a", "X-B": "b", "X-C": "c" } });
    await svix.endpoint.patchHeaders(app.id, ep.id, { headers: { "X-D": "d" }, deleteHeaders: ["x-a", "X-Nope"] });
    assert.deepEqual(lowerKeys((await svix.endpoint.getHeaders(app.id, ep.id)).headers), {
      "x-b": "b",
      "x-c": "c",
      "x-d": "d",
    });
    await svix.endpoint.patchHeaders(app.id, ep.id, { headers: { "X-B": null }, deleteHeaders: ["X-C"] });
    assert.deepEqual(lowerKeys((await svix.endpoint.getHeaders(app.id, ep.id)).headers), { "x-d": "d" });
    await expectApiError(
      svix.endpoint.patchHeaders(app.id, ep.id, { headers: {}, deleteHeaders: "X-D" }),
      422,
      undefined,
      "deleteHeaders not a list",
    );
    assert.deepEqual(lowerKeys((await svix.endpoint.getHeaders(app.id, ep.id)).headers), { "x-d": "d" });
  });

  test("endpoint uid works in every endpoint route; app uid works too", async () => {
    const appUid = uniq("appuid");
    await svix.application.create({ name: "ep-uid-routes", uid: appUid });
    const epUid = uniq("epuid");
    const ep = await svix.endpoint.create(appUid, { url: rx.url("/endpoints/uid"), uid: epUid });
    assert.equal((await svix.endpoint.get(appUid, epUid)).id, ep.id, "GET by app uid + endpoint uid");
    const patched = await svix.endpoint.patch(appUid, epUid, { description: "via uid" });
    assert.equal(patched.id, ep.id);
    assert.equal(patched.description, "via uid");
    const put = await svix.endpoint.upsert(appUid, epUid, { url: rx.url("/endpoints/uid2"), uid: epUid });
    assert.equal(put.id, ep.id);
    assert.equal(put.url, rx.url("/endpoints/uid2"));
    const { key } = await svix.endpoint.getSecret(appUid, epUid);
    assert.ok(key.startsWith("whsec_"));
    await svix.endpoint.setHeaders(appUid, epUid, { headers: { "X-Uid": "1" } });
    assert.equal(lowerKeys((await svix.endpoint.getHeaders(appUid, epUid)).headers)["x-uid"], "1");
    await svix.endpoint.rotateSecret(appUid, epUid, {});
    assert.notEqual((await svix.endpoint.getSecret(appUid, epUid)).key, key, "rotate via uids");
    const list = await svix.endpoint.list(appUid);
    assert.deepEqual(list.data.map((e) => e.id), [ep.id]);
    await svix.endpoint.delete(appUid, epUid);
    await expectApiError(svix.endpoint.get(appUid, epUid), 404, "not_found", "get deleted endpoint by uid");
  });

  test("unknown endpoint → 404 not_found", async () => {
    const app = await svix.application.create({ name: "ep-404" });
    await expectApiError(svix.endpoint.get(app.id, "ep_doesnotexist"), 404, "not_found", "get unknown endpoint");
    await expectApiError(svix.endpoint.getSecret(app.id, "nope"), 404, "not_found", "secret of unknown endpoint");
  });

  test("upsert on an unknown uid creates the endpoint under it (201); again, it updates it (200)", async () => {
    const app = await svix.application.create({ name: "ep-upsert" });
    const uid = uniq("ep-upsert");
    const made = await svix.endpoint.upsert(app.id, uid, {
      url: rx.url("/endpoints/upsert-a"),
      description: "made by upsert",
      eventTypes: ["user.created"],
    });
    assert.match(made.id, /^ep_/);
    assert.equal(made.uid, uid, "created under the uid of the path");
    assert.equal(made.description, "made by upsert");
    assert.deepEqual(made.eventTypes, ["user.created"]);
    assert.match((await svix.endpoint.getSecret(app.id, uid)).key, /^whsec_/, "a secret was made");
    const again = await svix.endpoint.upsert(app.id, uid, { url: rx.url("/endpoints/upsert-b") });
    assert.equal(again.id, made.id, "the second upsert updates the same endpoint");
    assert.equal(again.url, rx.url("/endpoints/upsert-b"));
    assert.deepEqual((await svix.endpoint.list(app.id)).data.map((e) => e.id), [made.id]);

    // The status tells created from updated; an id-shaped key, PATCH, or a bad body create nothing.
    // The SDK's update has no secret field; over HTTP, a secret in the body is the new endpoint's.
    const secret = makeSecret();
    const rawUid = uniq("ep-raw");
    const raw = await rawRequest(h, "PUT", `/api/v1/app/${app.id}/endpoint/${rawUid}`, {
      body: { url: rx.url("/endpoints/upsert-c"), secret },
    });
    assert.equal(raw.status, 201, raw.text);
    assert.equal((await svix.endpoint.getSecret(app.id, rawUid)).key, secret, "the given secret is kept");
    assert.equal((await rawRequest(h, "PUT", `/api/v1/app/${app.id}/endpoint/${uid}`, { body: { url: rx.url("/x") } })).status, 200);
    await expectApiError(svix.endpoint.upsert(app.id, "ep_2Jb8ZkqYbXzUnknown0000", { url: rx.url("/x") }), 404, "not_found", "an unknown id (herald's id shape)");
    await expectApiError(svix.endpoint.patch(app.id, uniq("ep-patch"), { description: "x" }), 404, "not_found", "PATCH on an unknown uid");
    await expectApiError(svix.endpoint.upsert(app.id, uniq("ep-bad"), { url: "ftp://nope" }), 422, undefined, "a bad url");
    assert.equal((await svix.endpoint.list(app.id)).data.length, 2, "only the two upserts made endpoints");
  });

  test("an endpoint of one app is not reachable through another app", async () => {
    const a = await svix.application.create({ name: "iso-a" });
    const b = await svix.application.create({ name: "iso-b" });
    const ep = await svix.endpoint.create(a.id, { url: rx.url("/endpoints/iso") });
    await expectApiError(svix.endpoint.get(b.id, ep.id), 404, "not_found", "cross-app endpoint get");
  });
});

describe("pagination", () => {
  test("7 endpoints with limit 3 → pages of 3, 3, 1", async () => {
    const app = await svix.application.create({ name: "paging-ep" });
    const ids = [];
    for (let i = 0; i < 7; i++) {
      ids.push((await svix.endpoint.create(app.id, { url: rx.url(`/paging/${i}`) })).id);
    }
    const pages = await collectAll((iterator) => svix.endpoint.list(app.id, { limit: 3, iterator }));
    assert.deepEqual(
      pages.map((p) => p.data.length),
      [3, 3, 1],
      `page sizes: ${JSON.stringify(pages.map((p) => ({ n: p.data.length, done: p.done, it: p.iterator })))}`,
    );
    assert.deepEqual(pages.map((p) => p.done), [false, false, true], "done only on the last page");
    const seen = pages.flatMap((p) => p.data.map((e) => e.id));
    assert.equal(new Set(seen).size, seen.length, `duplicates across pages: ${seen}`);
    assert.deepEqual([...seen].sort(), [...ids].sort(), "every endpoint seen exactly once");
    assert.deepEqual(seen, [...ids].reverse(), "newest first by default, as Svix");

    // order: descending pages newest first (the default), ascending oldest first; anything else is a 422.
    const down = await collectAll((iterator) => svix.endpoint.list(app.id, { limit: 3, iterator, order: "descending" }));
    assert.deepEqual(down.map((p) => p.data.length), [3, 3, 1]);
    assert.deepEqual(down.flatMap((p) => p.data.map((e) => e.id)), [...ids].reverse(), "newest first, each once");
    const up = await collectAll((iterator) => svix.endpoint.list(app.id, { limit: 3, iterator, order: "ascending" }));
    assert.deepEqual(up.flatMap((p) => p.data.map((e) => e.id)), ids);
    const res = await rawRequest(h, "GET", `/api/v1/app/${app.id}/endpoint?order=sideways`);
    assert.equal(res.status, 422, res.text);
  });

  test("applications: order descending lists newest first, across pages", async () => {
    const apps = [];
    for (let i = 0; i < 4; i++) apps.push((await svix.application.create({ name: `order-${i}` })).id);
    const listed = async (order) =>
      (await collectAll((iterator) => svix.application.list({ limit: 2, iterator, order })))
        .flatMap((p) => p.data.map((a) => a.id))
        .filter((id) => apps.includes(id));
    assert.deepEqual(await listed("descending"), [...apps].reverse());
    assert.deepEqual(await listed("ascending"), apps);
    assert.deepEqual(await listed(undefined), apps, "oldest first by default");
    const res = await rawRequest(h, "GET", "/api/v1/app?order=newest");
    assert.equal(res.status, 422, res.text);
  });

  test("7 messages with limit 3 → pages of 3, 3, 1, newest first", async () => {
    const app = await svix.application.create({ name: "paging-msg" });
    const ids = [];
    for (let i = 0; i < 7; i++) {
      ids.push((await svix.message.create(app.id, { eventType: "user.created", payload: { i } })).id);
    }
    const pages = await collectAll((iterator) => svix.message.list(app.id, { limit: 3, iterator }));
    assert.deepEqual(pages.map((p) => p.data.length), [3, 3, 1], "page sizes");
    assert.deepEqual(pages.map((p) => p.done), [false, false, true], "done only on the last page");
    const seen = pages.flatMap((p) => p.data.map((m) => m.id));
    assert.deepEqual(seen, [...ids].reverse(), "messages are listed newest first, each exactly once");
  });

  test("default list limit returns everything when below 50", async () => {
    const app = await svix.application.create({ name: "paging-default" });
    for (let i = 0; i < 4; i++) await svix.endpoint.create(app.id, { url: rx.url(`/paging-d/${i}`) });
    const page = await svix.endpoint.list(app.id);
    assert.equal(page.data.length, 4);
    assert.equal(page.done, true);
  });
});
