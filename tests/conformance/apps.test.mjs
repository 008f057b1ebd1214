// Applications, event types and health, driven through the official svix SDK.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  ApiException,
  RFC3339,
  Svix,
  instrumentSvix,
  assertRecentDate,
  onPostgres,
  expectApiError,
  rawRequest,
  runHerald,
  startHerald,
  uniq,
} from "./harness.mjs";

let h;
let svix;

before(async () => {
  h = await startHerald();
  svix = h.svix;
});

after(async () => {
  await h?.stop();
});

describe("health", () => {
  test("herald announces readiness on stdout", () => {
    assert.equal(
      h.listenStream,
      "stdout",
      `"listening on http://127.0.0.1:<port>" must be printed on stdout, it came on ${h.listenStream}`,
    );
  });

  test("svix.health.get() resolves", async () => {
    await svix.health.get();
  });

  test("GET /api/v1/health answers 200 or 204", async () => {
    const res = await rawRequest(h, "GET", "/api/v1/health");
    assert.ok(
      res.status === 200 || res.status === 204,
      `GET /api/v1/health: expected 200/204, got ${res.status} ${res.text}`,
    );
  });
});

describe("command line", () => {
  for (const [label, env, setting] of [
    ["HERALD_RETRY_SCHEDULE=soon", { HERALD_RETRY_SCHEDULE: "soon" }, "HERALD_RETRY_SCHEDULE"],
    ["HERALD_REQUEST_TIMEOUT=-5", { HERALD_REQUEST_TIMEOUT: "-5" }, "HERALD_REQUEST_TIMEOUT"],
    ["HERALD_ALLOW_PRIVATE_CIDRS=300.1.2.3/99", { HERALD_ALLOW_PRIVATE_CIDRS: "300.1.2.3/99" }, "HERALD_ALLOW_PRIVATE_CIDRS"],
  ]) {
    test(`bad configuration (${label}) exits 2 with one clear line`, async () => {
      // On PostgreSQL the running cluster's own database and key: only the setting is wrong.
      const db = onPostgres ? h.dbPath : `${h.dir}/bad-config.db`;
      const r = await runHerald(["serve", "--listen", "127.0.0.1:0", "--db", db], {
        env: { HERALD_ADMIN_TOKEN: "x".repeat(40), ...(onPostgres ? { HERALD_MASTER_KEY: h.masterKey } : {}), ...env },
      });
      const out = `${r.stderr}${r.stdout}`.trim();
      assert.equal(r.code, 2, `${label}: herald must exit 2, as for all bad configuration (exit ${r.code}, signal ${r.signal}): ${out}`);
      assert.equal(r.signal, null, `${label}: herald must exit, not crash (signal ${r.signal})`);
      assert.equal(out.split("\n").length, 1, `${label}: expected one line of output, got:\n${out}`);
      const base = setting.replace("HERALD_", "").toLowerCase(); // e.g. retry_schedule
      const spellings = [setting, base, base.replace(/_/g, "-"), base.replace(/_/g, " ")];
      assert.ok(
        spellings.some((w) => out.toLowerCase().includes(w.toLowerCase())),
        `${label}: the message should name the bad setting (${spellings.join(" / ")}): ${out}`,
      );
    });
  }

  test("bad usage of any command exits 2 with one line; a command that ran and failed exits 1", async () => {
    const db = h.dbPath;
    for (const args of [
      ["frobnicate"],
      ["serve", "--no-such-flag"],
      ["token", "frobnicate"],
      ["token", "revoke", "--db", db],
      ["token", "create", "--db", db, "--expires", "soon"],
      ["master-key", "frobnicate"],
      ["migrate-store", "--from", db],
    ]) {
      const r = await runHerald(args);
      const out = `${r.stderr}${r.stdout}`.trim();
      assert.equal(r.code, 2, `herald ${args.join(" ")}: exit 2 (got ${r.code}): ${out}`);
      assert.equal(out.split("\n").length, 1, `herald ${args.join(" ")}: one line, got:\n${out}`);
    }
    const r = await runHerald(["token", "revoke", "--db", db, "tok_nosuchtoken"]);
    assert.equal(r.code, 1, `revoking no token: exit 1 (got ${r.code}): ${r.stderr}`);
    assert.match(r.stderr, /^herald: no token 'tok_nosuchtoken'/);
  });

  test("SIGTERM shuts down cleanly with exit code 0", async () => {
    const other = await startHerald();
    await other.svix.health.get();
    const exit = await other.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, `exit after SIGTERM: ${JSON.stringify(exit)}`);
  });
});

describe("applications", () => {
  test("create returns app_ id, name, uid, metadata and dates", async () => {
    const uid = uniq("app");
    const app = await svix.application.create({ name: "Acme Corp", uid, metadata: { tier: "gold" } });
    assert.ok(app.id?.startsWith("app_"), `id should start with "app_", got ${app.id}`);
    assert.equal(app.name, "Acme Corp");
    assert.equal(app.uid, uid);
    assert.deepEqual(app.metadata, { tier: "gold" }, "metadata should round-trip");
    assertRecentDate(app.createdAt, "createdAt");
    assertRecentDate(app.updatedAt, "updatedAt");
  });

  test("wire format: camelCase fields, RFC 3339 times, 201 on create", async () => {
    const res = await rawRequest(h, "POST", "/api/v1/app", { body: { name: "wire", uid: uniq("wire") } });
    assert.equal(res.status, 201, `POST /api/v1/app should answer 201, got ${res.status} ${res.text}`);
    assert.match(res.json.createdAt, RFC3339, `createdAt "${res.json.createdAt}" is not RFC 3339`);
    assert.match(res.json.updatedAt, RFC3339, `updatedAt "${res.json.updatedAt}" is not RFC 3339`);
    assert.ok(!("created_at" in res.json), "fields must be camelCase (found created_at)");
    const list = await rawRequest(h, "GET", "/api/v1/app?limit=1");
    assert.equal(list.status, 200);
    for (const k of ["data", "iterator", "prevIterator", "done"]) {
      assert.ok(k in list.json, `list responses carry "${k}": ${list.text.slice(0, 300)}`);
    }
  });

  test("get by id and by uid return the same app", async () => {
    const uid = uniq("get");
    const app = await svix.application.create({ name: "Getter", uid });
    const byId = await svix.application.get(app.id);
    const byUid = await svix.application.get(uid);
    assert.equal(byId.id, app.id, "get by id");
    assert.equal(byUid.id, app.id, "get by uid should resolve to the same app");
    assert.equal(byUid.name, "Getter");
    assert.equal(byId.createdAt.getTime(), app.createdAt.getTime(), "createdAt stable across reads");
  });

  test("getOrCreate (get_if_exists) returns the existing app for the same uid", async () => {
    const uid = uniq("goc");
    const first = await svix.application.getOrCreate({ name: "GOC", uid });
    assert.ok(first.id.startsWith("app_"));
    const second = await svix.application.getOrCreate({ name: "GOC other name", uid });
    assert.equal(second.id, first.id, "same uid must return the same app");
    assert.equal(second.name, "GOC", "get_if_exists must not modify the existing app");
    const other = await svix.application.getOrCreate({ name: "GOC 2", uid: uniq("goc") });
    assert.notEqual(other.id, first.id, "a new uid creates a new app");
  });

  test("update (PUT) replaces the name", async () => {
    const uid = uniq("put");
    const app = await svix.application.create({ name: "Before", uid });
    const updated = await svix.application.upsert(app.id, { name: "After", uid });
    assert.equal(updated.id, app.id);
    assert.equal(updated.name, "After");
    assert.ok(
      updated.updatedAt.getTime() >= app.updatedAt.getTime(),
      "updatedAt must not go backwards",
    );
    const fetched = await svix.application.get(app.id);
    assert.equal(fetched.name, "After", "PUT must be persisted");
  });

  test("patch changes only the given fields", async () => {
    const uid = uniq("patch");
    const app = await svix.application.create({ name: "Patchable", uid, metadata: { a: "1" } });
    const patched = await svix.application.patch(app.id, { name: "Patched" });
    assert.equal(patched.id, app.id);
    assert.equal(patched.name, "Patched");
    assert.equal(patched.uid, uid, "patch without uid must keep the uid");
    assert.deepEqual(patched.metadata, { a: "1" }, "patch without metadata must keep it");
    const fetched = await svix.application.get(uid);
    assert.equal(fetched.name, "Patched");
  });

  test("list contains created apps in {data, iterator, done}", async () => {
    const a = await svix.application.create({ name: "L1", uid: uniq("list") });
    const b = await svix.application.create({ name: "L2", uid: uniq("list") });
    const page = await svix.application.list({ limit: 250 });
    assert.ok(Array.isArray(page.data), "data must be an array");
    assert.equal(typeof page.done, "boolean", "done must be a boolean");
    const ids = page.data.map((x) => x.id);
    assert.ok(ids.includes(a.id) && ids.includes(b.id), `list should include ${a.id} and ${b.id}`);
    for (const x of page.data) assert.ok(x.createdAt instanceof Date && !Number.isNaN(x.createdAt.getTime()));
  });

  test("delete then get → 404 not_found", async () => {
    const uid = uniq("del");
    const app = await svix.application.create({ name: "Doomed", uid });
    await svix.application.delete(app.id);
    const e404 = await expectApiError(svix.application.get(app.id), 404, "not_found", "get deleted app by id");
    assert.equal(typeof e404.body.detail, "string", `404 body is {code, detail}: ${JSON.stringify(e404.body)}`);
    await expectApiError(svix.application.get(uid), 404, "not_found", "get deleted app by uid");
    await expectApiError(svix.application.delete(app.id), 404, "not_found", "delete twice");
    const list = await svix.application.list({ limit: 250 });
    assert.ok(!list.data.some((x) => x.id === app.id), "deleted app must not be listed");
  });

  test("DELETE answers 204", async () => {
    const app = await svix.application.create({ name: "Doomed raw" });
    const res = await rawRequest(h, "DELETE", `/api/v1/app/${app.id}`);
    assert.equal(res.status, 204, `DELETE app: expected 204, got ${res.status} ${res.text}`);
  });

  test("duplicate uid → 409", async () => {
    const uid = uniq("dup");
    const app = await svix.application.create({ name: "Original", uid });
    await expectApiError(svix.application.create({ name: "Copy", uid }), 409, "conflict", "create duplicate uid");
    const fetched = await svix.application.get(uid);
    assert.equal(fetched.id, app.id, "the original app must be untouched");
    assert.equal(fetched.name, "Original");
  });

  test("idempotency-key: same key returns the same app, creates one", async () => {
    const name = uniq("idem-app");
    const key = uniq("k");
    const a = await svix.application.create({ name }, { idempotencyKey: key });
    const b = await svix.application.create({ name }, { idempotencyKey: key });
    assert.equal(b.id, a.id, "the second create with the same idempotency-key must replay the first");
    const list = await svix.application.list({ limit: 250 });
    assert.equal(
      list.data.filter((x) => x.name === name).length,
      1,
      "exactly one app may exist after two creates with the same key",
    );
    const c = await svix.application.create({ name }, { idempotencyKey: uniq("k") });
    assert.notEqual(c.id, a.id, "a different key creates a different app");
  });
});

describe("event types", () => {
  test("create, get, list, update, patch, delete (archive)", async () => {
    const name = `conf.${uniq("et").replace(/-/g, "_")}`;
    const created = await svix.eventType.create({ name, description: "first description" });
    assert.equal(created.name, name);
    assert.equal(created.description, "first description");
    assert.equal(created.archived, false, "a new event type is not archived");
    assertRecentDate(created.createdAt, "eventType.createdAt");
    assertRecentDate(created.updatedAt, "eventType.updatedAt");

    const got = await svix.eventType.get(name);
    assert.equal(got.name, name);
    assert.equal(got.description, "first description");

    const list = await svix.eventType.list({ limit: 250 });
    assert.ok(list.data.some((e) => e.name === name), `list should contain ${name}`);

    const updated = await svix.eventType.upsert(name, { description: "second description" });
    assert.equal(updated.name, name);
    assert.equal(updated.description, "second description");
    assert.equal((await svix.eventType.get(name)).description, "second description", "PUT persisted");

    const patched = await svix.eventType.patch(name, { description: "third description" });
    assert.equal(patched.description, "third description");

    await svix.eventType.delete(name);
    const archived = await svix.eventType.get(name);
    assert.equal(archived.archived, true, "DELETE archives the event type (Svix semantics)");
    const listAfter = await svix.eventType.list({ limit: 250 });
    assert.ok(
      !listAfter.data.some((e) => e.name === name),
      "archived event types are hidden from list by default",
    );
    const listArchived = await svix.eventType.list({ limit: 250, includeArchived: true });
    assert.ok(
      listArchived.data.some((e) => e.name === name && e.archived === true),
      "include_archived=true lists the archived event type",
    );
  });

  test("schemas read back on get; lists leave them out unless withContent", async () => {
    const name = uniq("schema.type");
    const schemas = { 1: { type: "object", properties: { id: { type: "string" } }, examples: [{ id: "x" }] } };
    const created = await svix.eventType.create({ name, description: "with a schema", schemas });
    assert.deepEqual(created.schemas, schemas);
    assert.deepEqual((await svix.eventType.get(name)).schemas, schemas, "get carries the schemas");
    const find = (list) => list.data.find((e) => e.name === name);
    const plain = find(await svix.eventType.list({ limit: 250 }));
    assert.ok(plain, "listed");
    assert.equal(plain.schemas ?? null, null, "the SDK's default (with_content=false) leaves schemas out");
    const full = find(await svix.eventType.list({ limit: 250, withContent: true }));
    assert.deepEqual(full.schemas, schemas, "withContent: true includes them");
  });

  test("create on an archived event type unarchives it", async () => {
    const name = `conf.${uniq("unarch").replace(/-/g, "_")}`;
    await svix.eventType.create({ name, description: "d" });
    await svix.eventType.delete(name);
    const again = await svix.eventType.create({ name, description: "d2" });
    assert.equal(again.archived, false, "create must unarchive");
  });

  test("creating an existing event type → 409", async () => {
    const name = `conf.${uniq("dupet").replace(/-/g, "_")}`;
    await svix.eventType.create({ name, description: "d" });
    await expectApiError(svix.eventType.create({ name, description: "d" }), 409, undefined, "duplicate event type");
  });

  test("get unknown event type → 404", async () => {
    await expectApiError(svix.eventType.get("no.such.event"), 404, "not_found", "get unknown event type");
  });
});

describe("app portal access and app-scoped tokens", () => {
  test("appPortalAccess returns {url, token}; the token sees only its app", async () => {
    const mine = await svix.application.create({ name: "portal-mine", uid: uniq("portal") });
    const other = await svix.application.create({ name: "portal-other", uid: uniq("portal") });
    await svix.message.create(mine.id, { eventType: "user.created", payload: { mine: true } });
    await svix.message.create(other.id, { eventType: "user.created", payload: { other: true } });

    const access = await svix.authentication.appPortalAccess(mine.id, {});
    assert.equal(typeof access.url, "string", `url: ${JSON.stringify(access)}`);
    assert.match(access.url, /^https?:\/\//, "portal url is absolute");
    assert.ok(typeof access.token === "string" && access.token.length > 0, "token is returned");

    const scoped = instrumentSvix(new Svix(access.token, { serverUrl: h.url }));
    const msgs = await scoped.message.list(mine.id);
    assert.equal(msgs.data.length, 1, "the app token lists its own app's messages");

    for (const [what, call] of [
      ["get another app", () => scoped.application.get(other.id)],
      ["list another app's messages", () => scoped.message.list(other.id)],
      ["send to another app", () => scoped.message.create(other.id, { eventType: "x", payload: {} })],
      ["create an app", () => scoped.application.create({ name: "sneaky" })],
    ]) {
      let err;
      try {
        await call();
      } catch (e) {
        err = e;
      }
      assert.ok(
        err instanceof ApiException && [401, 403, 404].includes(err.code),
        `app-scoped token must not ${what}: got ${err ? `${err.code} ${JSON.stringify(err.body)}` : "success"}`,
      );
    }
    const otherMsgs = await svix.message.list(other.id);
    assert.equal(otherMsgs.data.length, 1, "nothing was sent to the other app");
  });

  test("app portal access for an app uid and for an unknown app", async () => {
    const uid = uniq("portal");
    await svix.application.create({ name: "portal-uid", uid });
    const access = await svix.authentication.appPortalAccess(uid, {});
    assert.ok(access.token, "portal access by app uid");
    await expectApiError(
      svix.authentication.appPortalAccess("app_doesnotexist", {}),
      404,
      "not_found",
      "portal access for unknown app",
    );
  });

  test("appPortalAccess with readOnly: the token reads its app and may change nothing", async () => {
    const uid = uniq("portal-ro");
    const app = await svix.application.create({ name: "portal-read-only", uid });
    await svix.message.create(uid, { eventType: "user.created", payload: { n: 1 } });
    const access = await svix.authentication.appPortalAccess(uid, { readOnly: true, expiry: 3600 });
    assert.match(access.url, /\/portal\/#key=/, `portal url carries the token in its fragment: ${access.url}`);
    const ro = instrumentSvix(new Svix(access.token, { serverUrl: h.url }));
    assert.equal((await ro.message.list(uid)).data.length, 1, "a read-only token reads its app");
    assert.equal((await ro.application.get(app.id)).name, "portal-read-only");
    for (const [what, call] of [
      ["send a message", () => ro.message.create(uid, { eventType: "x", payload: {} })],
      ["create an endpoint", () => ro.endpoint.create(uid, { url: "https://example.com/ro" })],
      ["rename its app", () => ro.application.patch(uid, { name: "renamed" })],
    ]) {
      await expectApiError(call(), 403, "forbidden", `read-only token: ${what}`);
    }
    assert.equal((await svix.message.list(uid)).data.length, 1, "nothing was sent");
    assert.equal((await svix.application.get(uid)).name, "portal-read-only", "nothing was renamed");
    await expectApiError(
      svix.authentication.appPortalAccess(uid, { expiry: 60 }),
      422,
      "validation",
      "an expiry under one hour",
    );
  });
});
