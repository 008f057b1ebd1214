// Tokens and secrets at rest. `herald token create --app` makes a token that reaches only its
// application (404 for anything else) and expires; `token list` never shows a token; `token
// revoke` ends one. The master key file is created 0600, the database file never holds an
// endpoint secret, a wrong master key is refused with one line, and `herald master-key rotate`
// keeps every endpoint secret as it was. On PostgreSQL the same: the token commands take the
// database's URI, a pg_dump stands for the copy of the files, and the key file is the one named
// by HERALD_MASTER_KEY_FILE (the harness otherwise gives every node HERALD_MASTER_KEY).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import {
  Svix,
  createPgDatabase,
  databaseCopy,
  dropPgDatabase,
  eventually,
  expectApiError,
  instrumentSvix,
  makeSecret,
  onPostgres,
  onSqlite,
  rawRequest,
  runHerald,
  startHerald,
  startReceiver,
  uniq,
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

/** `herald token create --db <h's db> ...args`: resolves with {token, id}. */
async function createToken(args, db = h.dbPath) {
  const r = await runHerald(["token", "create", "--db", db, ...args]);
  assert.equal(r.code, 0, `herald token create ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  const token = r.stdout.trim();
  assert.match(token, /^\S{20,}$/, `token create prints the token alone on stdout, got "${r.stdout}"`);
  const id = /\b(tok_\w+)/.exec(r.stderr)?.[1];
  assert.ok(id, `token create names the new token's id on stderr: "${r.stderr}"`);
  return { token, id };
}

const clientFor = (token) => instrumentSvix(new Svix(token, { serverUrl: h.url }));

/** The raw key of a "whsec_..." secret. */
const keyOf = (secret) => Buffer.from(secret.slice("whsec_".length), "base64");

/** An app with one endpoint on the receiver and one delivered message. */
async function appWithTraffic(name) {
  const app = await svix.application.create({ name, uid: uniq(name) });
  const p = `/${uniq(name)}`;
  const ep = await svix.endpoint.create(app.id, { url: rx.url(p) });
  const msg = await svix.message.create(app.id, { eventType: "user.created", payload: { app: name } });
  await rx.waitFor(p, 1);
  return { app, ep, msg, path: p };
}

describe("app-scoped tokens across two apps", () => {
  let a;
  let b;
  let scoped;
  let scopedId;

  before(async () => {
    a = await appWithTraffic("scope-a");
    b = await appWithTraffic("scope-b");
    ({ token: scoped, id: scopedId } = await createToken(["--app", a.app.uid, "--name", "portal-a"]));
  });

  test("the token reaches its own app, its endpoints and its messages", async () => {
    const s = clientFor(scoped);
    assert.equal((await s.application.get(a.app.id)).id, a.app.id);
    assert.equal((await s.application.get(a.app.uid)).id, a.app.id, "by uid as well");
    const eps = await s.endpoint.list(a.app.id);
    assert.deepEqual(eps.data.map((e) => e.id), [a.ep.id]);
    const { key } = await s.endpoint.getSecret(a.app.id, a.ep.id);
    assert.match(key, /^whsec_/);
    assert.equal((await s.message.get(a.app.id, a.msg.id)).id, a.msg.id);
    const attempts = await s.messageAttempt.listByMsg(a.app.id, a.msg.id);
    assert.ok(attempts.data.length >= 1, "attempts of its own messages");

    // It sends too, and the delivery is signed with the endpoint's secret.
    const payload = { via: "app token" };
    const msg = await s.message.create(a.app.id, { eventType: "user.created", payload });
    const [, second] = await rx.waitFor(a.path, 2);
    verifyDelivery(key, second, { msgId: msg.id, payload, what: "message sent with the app token" });
    const p = `/${uniq("scoped-ep")}`;
    const ep = await s.endpoint.create(a.app.id, { url: rx.url(p) });
    assert.equal((await s.endpoint.get(a.app.id, ep.id)).id, ep.id);
  });

  test("anything else is 404: the other app, listing apps, creating apps", async () => {
    const s = clientFor(scoped);
    for (const [what, call] of [
      ["get app B", () => s.application.get(b.app.id)],
      ["get app B by uid", () => s.application.get(b.app.uid)],
      ["replace app B", () => s.application.upsert(b.app.id, { name: "taken" })],
      ["patch app B", () => s.application.patch(b.app.id, { name: "taken" })],
      ["delete app B", () => s.application.delete(b.app.id)],
      ["list B's endpoints", () => s.endpoint.list(b.app.id)],
      ["get B's endpoint", () => s.endpoint.get(b.app.id, b.ep.id)],
      ["get B's endpoint under A", () => s.endpoint.get(a.app.id, b.ep.id)],
      ["get B's endpoint secret", () => s.endpoint.getSecret(b.app.id, b.ep.id)],
      ["create an endpoint in B", () => s.endpoint.create(b.app.id, { url: rx.url("/sneaky") })],
      ["list B's messages", () => s.message.list(b.app.id)],
      ["get B's message", () => s.message.get(b.app.id, b.msg.id)],
      ["get B's message under A", () => s.message.get(a.app.id, b.msg.id)],
      ["send to B", () => s.message.create(b.app.id, { eventType: "x", payload: {} })],
      ["list B's attempts", () => s.messageAttempt.listByMsg(b.app.id, b.msg.id)],
      ["create an event type", () => s.eventType.create({ name: "sneaky.type", description: "x" })],
      ["list apps", () => s.application.list()],
      ["create an app", () => s.application.create({ name: "sneaky" })],
      ["get-or-create an app", () => s.application.getOrCreate({ name: "sneaky", uid: uniq("sneaky") })],
      ["create an app by PUT", () => s.application.upsert(uniq("sneaky"), { name: "sneaky" })],
    ]) {
      await expectApiError(call(), 404, undefined, `app-scoped token: ${what}`);
    }
    // Nothing reached B.
    assert.equal((await svix.message.list(b.app.id)).data.length, 1, "B has only its own message");
    assert.equal((await svix.endpoint.list(b.app.id)).data.length, 1, "B has only its own endpoint");
    assert.equal((await svix.application.get(b.app.id)).name, "scope-b");
  });

  test("token list shows the token's id, scope and name, never the token", async () => {
    const r = await runHerald(["token", "list", "--db", h.dbPath]);
    assert.equal(r.code, 0, `token list: ${r.stderr}`);
    const line = r.stdout.split("\n").find((l) => l.includes(scopedId));
    assert.ok(line, `token list shows ${scopedId}:\n${r.stdout}`);
    assert.ok(line.includes(a.app.id), `the scope is app A's id: ${line}`);
    assert.ok(line.includes("portal-a"), `the name: ${line}`);
    assert.ok(!r.stdout.includes(scoped), "the token itself is never listed");
    assert.ok(!r.stdout.includes(scoped.slice(-16)), "nor any part of it");
    assert.ok(!r.stdout.includes(h.token), "nor the admin token");
    const hash = crypto.createHash("sha256").update(scoped).digest();
    for (const enc of ["hex", "base64"]) {
      assert.ok(!r.stdout.includes(hash.toString(enc).slice(0, 16)), `nor its hash (${enc})`);
    }
    assert.match(r.stdout, /\badmin\b/, "the admin token is listed as admin");
  });

  test("token revoke: the token gets 401 from then on", async () => {
    const { token, id } = await createToken(["--app", a.app.id]);
    await clientFor(token).application.get(a.app.id);
    const r = await runHerald(["token", "revoke", "--db", h.dbPath, id]);
    assert.equal(r.code, 0, `token revoke: ${r.stderr}`);
    await expectApiError(clientFor(token).application.get(a.app.id), 401, undefined, "revoked token");
    const again = await runHerald(["token", "revoke", "--db", h.dbPath, id]);
    assert.equal(again.code, 1, "revoking an unknown id fails (exit 1)");
    assert.equal(again.stderr.trim().split("\n").length, 1, `one line: ${again.stderr}`);
    const list = await runHerald(["token", "list", "--db", h.dbPath]);
    assert.ok(!list.stdout.includes(id), "a revoked token is not listed");
  });

  test("an app-scoped token expires: works, then 401", async () => {
    const { token } = await createToken(["--app", a.app.id, "--expires", "1s"]);
    const s = clientFor(token);
    await s.application.get(a.app.id);
    // Its second is wall-clock time: poll for the end of it rather than sleep past it.
    const path = `/api/v1/app/${a.app.id}`;
    await eventually(async () => (await rawRequest(h, "GET", path, { token })).status === 401, {
      timeoutMs: 3000,
      message: "the token expires a second after it was made",
    });
    await expectApiError(s.application.get(a.app.id), 401, undefined, "expired app token");
    await expectApiError(s.message.list(a.app.id), 401, undefined, "expired app token");
  });

  test("token create without --app makes an admin token; an unknown app is an error", async () => {
    const { token } = await createToken(["--name", "ops"]);
    const s = clientFor(token);
    const apps = await s.application.list();
    assert.ok(apps.data.some((x) => x.id === b.app.id), "an admin token lists every app");
    const r = await runHerald(["token", "create", "--db", h.dbPath, "--app", "app_nosuchapp"]);
    assert.equal(r.code, 1, "unknown app: exit 1");
    assert.equal(r.stdout, "", "no token printed");
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
    assert.match(r.stderr, /app_nosuchapp/);
  });

  test("herald --help lists the token and master-key commands; each has --help", async () => {
    const top = await runHerald(["--help"]);
    assert.match(top.stdout, /\btoken\b/);
    assert.match(top.stdout, /\bmaster-key\b/);
    for (const cmd of [["token", "--help"], ["token", "create", "--help"], ["master-key", "--help"], ["master-key", "rotate", "--help"]]) {
      const r = await runHerald(cmd);
      assert.equal(r.code, 0, `${cmd.join(" ")}: exit ${r.code} ${r.stderr}`);
      assert.match(r.stdout, /Usage: herald/, `${cmd.join(" ")} prints its usage`);
    }
  });
});

describe("ending portal sessions: logout and expire-all", () => {
  // A token from appPortalAccess, and a client that uses it.
  async function portalToken(appId, body = {}) {
    const access = await svix.authentication.appPortalAccess(appId, body);
    return { token: access.token, client: clientFor(access.token) };
  }
  const works = async (client, appId) => (await client.application.get(appId)).id === appId;
  const refused = (client, appId, what) =>
    expectApiError(client.application.get(appId), 401, "authentication_failed", what);

  test("logout revokes the calling app token at once, read-only ones too; others keep working", async () => {
    const app = await svix.application.create({ name: "logout", uid: uniq("logout") });
    const one = await portalToken(app.id);
    const two = await portalToken(app.id);
    const reader = await portalToken(app.id, { readOnly: true });
    assert.ok(await works(one.client, app.id));
    await one.client.authentication.logout();
    await refused(one.client, app.id, "a logged-out token");
    await expectApiError(one.client.authentication.logout(), 401, "authentication_failed", "logging out twice");
    assert.ok(await works(two.client, app.id), "another token of the same app still works");
    await reader.client.authentication.logout();
    await refused(reader.client, app.id, "a logged-out read-only token");
    // The admin token cannot log itself out: 403, and it keeps working.
    await expectApiError(svix.authentication.logout(), 403, "forbidden", "logout with the admin token");
    assert.ok(await works(svix, app.id), "the admin token still works");
  });

  test("expire-all: every token of the app, now or after `expiry`; sessionIds picks some; others untouched", async () => {
    const app = await svix.application.create({ name: "expire-all", uid: uniq("expire") });
    const other = await svix.application.create({ name: "expire-other", uid: uniq("expire") });
    const plain = await portalToken(app.id);
    const alice = await portalToken(app.id, { sessionId: "alice" });
    const bob = await portalToken(app.id, { sessionId: "bob" });
    const elsewhere = await portalToken(other.id, { sessionId: "alice" });

    // Only alice's session of this app.
    await svix.authentication.expireAll(app.id, { sessionIds: ["alice"] });
    await refused(alice.client, app.id, "alice's token after expire-all of her session");
    assert.ok(await works(bob.client, app.id), "bob's session is not named");
    assert.ok(await works(plain.client, app.id), "a token without a session is not named");
    assert.ok(await works(elsewhere.client, other.id), "the other app's alice is another app's");

    // All of them, two seconds from now: they work until then.
    await svix.authentication.expireAll(app.id, { expiry: 2 });
    assert.ok(await works(bob.client, app.id), "still within the expiry");
    await eventually(
      async () => {
        try {
          await bob.client.application.get(app.id);
          return false;
        } catch (e) {
          return e.code === 401;
        }
      },
      { timeoutMs: 6000, intervalMs: 200, message: "bob's token expires about 2 s after expire-all" },
    );
    await refused(plain.client, app.id, "every token of the app, once expired");
    assert.ok(await works(elsewhere.client, other.id), "the other app's token still works");
    assert.ok(await works(svix, app.id), "the admin token is not an app token");
  });

  test("expire-all refuses bad input and app tokens, and changes nothing then", async () => {
    const app = await svix.application.create({ name: "expire-bad", uid: uniq("expire") });
    const t = await portalToken(app.id);
    for (const body of [{ expiry: -1 }, { expiry: "soon" }, { sessionIds: "alice" }, { sessionIds: [7] }]) {
      const res = await rawRequest(h, "POST", `/api/v1/auth/app/${app.id}/expire-all`, { body });
      assert.equal(res.status, 422, `expire-all ${JSON.stringify(body)}: ${res.status} ${res.text}`);
    }
    await expectApiError(t.client.authentication.expireAll(app.id, {}), 404, undefined, "expire-all with an app token");
    await expectApiError(svix.authentication.expireAll("app_doesnotexist", {}), 404, undefined, "an unknown app");
    assert.ok(await works(t.client, app.id), "nothing was expired");
  });
});

describe("secrets at rest", () => {
  // The herald whose master key lives in a key file. On SQLite that is `h` with its default
  // <db>.key; on PostgreSQL, where the harness hands every node HERALD_MASTER_KEY, it is one
  // node started with HERALD_MASTER_KEY_FILE instead (the other way to give it the key).
  let keyed;
  before(async () => {
    if (onSqlite) {
      keyed = { h, keyFile: `${h.dbPath}.key`, env: {} };
      return;
    }
    const keyFile = path.join(h.dir, "master.key");
    const env = { HERALD_MASTER_KEY_FILE: keyFile };
    keyed = { h: await startHerald({ nodes: 1, masterKey: null, env }), keyFile, env };
  });
  after(async () => {
    if (keyed && keyed.h !== h) await keyed.h.stop();
  });

  test("the first start creates the master key file with mode 0600", () => {
    const { keyFile } = keyed;
    assert.ok(existsSync(keyFile), `${keyFile} exists after the first start`);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600, "the key file is 0600");
    const key = Buffer.from(readFileSync(keyFile, "utf8").trim(), "base64");
    assert.equal(key.length, 32, "it holds base64 of 32 bytes");
  });

  test(`the database (${onPostgres ? "a pg_dump of it" : "its files"}) never holds an endpoint secret`, async () => {
    const app = await svix.application.create({ name: "at-rest", uid: uniq("rest") });
    const explicit = makeSecret(32);
    const url = rx.url(`/${uniq("rest-marker")}`);
    const e1 = await svix.endpoint.create(app.id, { url, secret: explicit });
    const e2 = await svix.endpoint.create(app.id, { url: rx.url("/rest-2") });
    await svix.endpoint.rotateSecret(app.id, e2.id, {});
    const secrets = [
      (await svix.endpoint.getSecret(app.id, e1.id)).key,
      (await svix.endpoint.getSecret(app.id, e2.id)).key,
    ];
    assert.equal(secrets[0], explicit);
    const bytes = await databaseCopy(h.dbPath);
    // The control: what was written is in the copy, in the clear.
    assert.ok(bytes.includes(Buffer.from(url)), "the endpoint URL is in the copy of the database");
    for (const secret of secrets) {
      const key = keyOf(secret);
      assert.ok(!bytes.includes(key), `the raw key of ${secret.slice(0, 12)}... is not in the copy`);
      assert.ok(!bytes.includes(Buffer.from(secret)), "nor its whsec_ form");
      assert.ok(!bytes.includes(Buffer.from(secret.slice(6))), "nor its base64");
      assert.ok(!bytes.includes(Buffer.from(key.toString("hex"))), "nor its hex");
    }
  });

  test("a wrong or malformed HERALD_MASTER_KEY, or an open key file: exit 2, one line", async () => {
    // A database no herald holds (on SQLite a running one's would be refused as in use first).
    const stopped = await startHerald();
    await stopped.svix.application.create({ name: "sealed" });
    await stopped.stop({ keepDir: true });
    const serve = ["serve", "--listen", "127.0.0.1:0", "--db", stopped.dbPath];
    const cases = [
      ["wrong key", { HERALD_MASTER_KEY: crypto.randomBytes(32).toString("base64") }, /HERALD_MASTER_KEY/],
      ["malformed key", { HERALD_MASTER_KEY: "c2hvcnQ=" }, /HERALD_MASTER_KEY/],
    ];
    for (const [what, env, pattern] of cases) {
      const r = await runHerald(serve, { env });
      const out = `${r.stderr}${r.stdout}`.trim();
      assert.equal(r.code, 2, `${what}: exit 2 (got ${r.code}): ${out}`);
      assert.equal(r.signal, null, `${what}: an exit, not a crash`);
      assert.equal(out.split("\n").length, 1, `${what}: one line, got:\n${out}`);
      assert.match(out, pattern, `${what}: names the setting: ${out}`);
      if (what === "wrong key") assert.match(out, /does not match/, out);
    }
    rmSync(stopped.dir, { recursive: true, force: true });
    if (onPostgres) await dropPgDatabase(stopped.dbPath);
    const { keyFile, env } = keyed;
    chmodSync(keyFile, 0o644);
    try {
      const r = await runHerald(["serve", "--listen", "127.0.0.1:0", "--db", keyed.h.dbPath], { env });
      const out = `${r.stderr}${r.stdout}`.trim();
      assert.equal(r.code, 2, `group/world-readable key file: exit 2 (got ${r.code}): ${out}`);
      assert.equal(out.split("\n").length, 1, `one line, got:\n${out}`);
      assert.ok(out.includes(keyFile), `names the file: ${out}`);
    } finally {
      chmodSync(keyFile, 0o600);
    }
  });

  /**
   * A herald on a database of its own for a rotation, with the key in `keyFile` or in
   * HERALD_MASTER_KEY: an app, an endpoint on the receiver and one delivered, verified message.
   * Resolves with what the rest of the test needs; the herald is stopped, its database kept.
   */
  async function beforeRotation(dbPath, startOpts) {
    const first = await startHerald({ dbPath, ...startOpts });
    try {
      const app = await first.svix.application.create({ name: "rotate", uid: uniq("rotate") });
      const p = `/${uniq("rotate")}`;
      const ep = await first.svix.endpoint.create(app.id, { url: rx.url(p) });
      const { key: secret } = await first.svix.endpoint.getSecret(app.id, ep.id);
      const m1 = await first.svix.message.create(app.id, { eventType: "user.created", payload: { n: 1 } });
      const [r1] = await rx.waitFor(p, 1);
      verifyDelivery(secret, r1, { msgId: m1.id, payload: { n: 1 } });
      return { app, ep, secret, path: p };
    } finally {
      await first.stop({ keepDir: true }); // every node stopped before the rotation
    }
  }

  /** After a rotation: the same secret, a verified delivery, and the secret in no copy. */
  async function afterRotation(dbPath, startOpts, { app, ep, secret, path: p }) {
    const second = await startHerald({ dbPath, ...startOpts });
    try {
      const { key: after } = await second.svix.endpoint.getSecret(app.id, ep.id);
      assert.equal(after, secret, "the endpoint secret is unchanged by the rotation");
      const m2 = await second.svix.message.create(app.id, { eventType: "user.created", payload: { n: 2 } });
      const [, r2] = await rx.waitFor(p, 2);
      verifyDelivery(secret, r2, { msgId: m2.id, payload: { n: 2 } });
      assert.ok(!(await databaseCopy(dbPath)).includes(keyOf(secret)), "still not in the copy after the rotation");
    } finally {
      await second.stop();
    }
  }

  test("master-key rotate with a key file, then restart: same secrets, signatures verify, old key refused", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "herald-rotate-"));
    const dbPath = onPostgres ? await createPgDatabase() : path.join(dir, "rotate.db");
    const keyFile = onPostgres ? path.join(dir, "master.key") : `${dbPath}.key`;
    const env = onPostgres ? { HERALD_MASTER_KEY_FILE: keyFile } : {};
    // One node: two starting at once on a missing key file would each try to create it.
    const startOpts = { nodes: 1, masterKey: null, env };
    try {
      const state = await beforeRotation(dbPath, startOpts);
      const oldKey = readFileSync(keyFile, "utf8").trim();
      const r = await runHerald(["master-key", "rotate", "--db", dbPath], { env });
      assert.equal(r.code, 0, `master-key rotate exited ${r.code}: ${r.stderr}`);
      const newKey = readFileSync(keyFile, "utf8").trim();
      assert.notEqual(newKey, oldKey, "the key file holds a new key");
      assert.equal(Buffer.from(newKey, "base64").length, 32);
      assert.equal(statSync(keyFile).mode & 0o777, 0o600, "the new key file is 0600");
      assert.ok(!existsSync(`${keyFile}.new`), "no .new file is left");

      // The old key no longer opens the database.
      const refused = await runHerald(["serve", "--listen", "127.0.0.1:0", "--db", dbPath], {
        env: { HERALD_MASTER_KEY: oldKey },
      });
      assert.equal(refused.code, 2, `the old key must be refused (exit 2): ${refused.stdout}${refused.stderr}`);

      await afterRotation(dbPath, startOpts, state);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      if (onPostgres) await dropPgDatabase(dbPath);
    }
  });

  test("master-key rotate with HERALD_MASTER_KEY prints the new key; restarted with it, nothing changed", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "herald-rotate-env-"));
    const dbPath = onPostgres ? await createPgDatabase() : path.join(dir, "rotate.db");
    const oldKey = crypto.randomBytes(32).toString("base64");
    // On PostgreSQL the default two nodes: both use the key, both are stopped for the rotation.
    const opts = (key) => ({ masterKey: key, env: { HERALD_MASTER_KEY: key } });
    try {
      const state = await beforeRotation(dbPath, opts(oldKey));
      const r = await runHerald(["master-key", "rotate", "--db", dbPath], { env: { HERALD_MASTER_KEY: oldKey } });
      assert.equal(r.code, 0, `master-key rotate exited ${r.code}: ${r.stderr}`);
      const newKey = r.stdout.trim();
      assert.match(newKey, /^[A-Za-z0-9+/]+={0,2}$/, `the new key alone on stdout, got "${r.stdout}"`);
      assert.equal(Buffer.from(newKey, "base64").length, 32, "base64 of 32 bytes");
      assert.notEqual(newKey, oldKey);
      assert.ok(!r.stderr.includes(newKey), "the new key is not on stderr");
      if (onSqlite) assert.ok(!existsSync(`${dbPath}.key`), "with HERALD_MASTER_KEY no key file is written");

      const refused = await runHerald(["serve", "--listen", "127.0.0.1:0", "--db", dbPath], {
        env: { HERALD_MASTER_KEY: oldKey },
      });
      const out = `${refused.stderr}${refused.stdout}`.trim();
      assert.equal(refused.code, 2, `the old key must be refused (exit 2): ${out}`);
      assert.match(out, /HERALD_MASTER_KEY.*does not match/, out);

      await afterRotation(dbPath, opts(newKey), state);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      if (onPostgres) await dropPgDatabase(dbPath);
    }
  });
});

describe("the generated admin token and HERALD_ADMIN_TOKEN", () => {
  test("setting HERALD_ADMIN_TOKEN later adds it; the generated one works until revoked", async () => {
    // The first start without HERALD_ADMIN_TOKEN prints a generated admin token.
    const first = await startHerald({ env: { HERALD_ADMIN_TOKEN: undefined } });
    let restarted;
    try {
      const printed = first.logs().stdout.match(/admin token \(shown once, store it now\): (sk_\S+)/);
      assert.ok(printed, `the first start prints a generated token:\n${first.logs().stdout}`);
      const generated = printed[1];
      await first.stop({ keepDir: true });

      const configured = `configured-${crypto.randomBytes(16).toString("hex")}`;
      restarted = await startHerald({ dbPath: first.dbPath, token: configured });
      assert.doesNotMatch(restarted.logs().stdout, /admin token \(shown once/, "no new token is generated");
      for (const [what, token] of [["HERALD_ADMIN_TOKEN", configured], ["the generated token", generated]]) {
        const apps = await rawRequest(restarted, "GET", "/api/v1/app", { token });
        assert.equal(apps.status, 200, `${what} is an admin token: ${apps.text}`);
      }
      const list = await runHerald(["token", "list", "--db", first.dbPath], { env: { HERALD_MASTER_KEY: restarted.masterKey } });
      const admins = list.stdout.split("\n").filter((l) => /\badmin\b/.test(l));
      assert.equal(admins.length, 2, `both are listed:\n${list.stdout}`);
      const generatedLine = admins.find((l) => l.includes("generated"));
      assert.ok(generatedLine, `the generated one is named so:\n${list.stdout}`);

      // Retired by hand, as documented: revoke it.
      const id = generatedLine.match(/\btok_\S+/)[0];
      const revoked = await runHerald(["token", "revoke", "--db", first.dbPath, id]);
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.equal((await rawRequest(restarted, "GET", "/api/v1/app", { token: generated })).status, 401);
      assert.equal((await rawRequest(restarted, "GET", "/api/v1/app", { token: configured })).status, 200);
    } finally {
      await restarted?.stop();
      if (!restarted) await first.stop();
    }
  });
});
