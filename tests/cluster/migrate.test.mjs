// herald migrate-store end to end, with the real binaries: a SQLite herald with apps, endpoints
// (one dead, its delivery pending), event types, a scoped token, a portal link, attempts and
// 2000 more messages is stopped and copied into an empty PostgreSQL database. One copy is
// SIGKILLed half-way and run again to the end; then two PostgreSQL nodes under the key of the
// SQLite key file serve the same secrets, tokens and attempts, and deliver what was pending,
// signed with the old secret. Also: a wrong master key, a --from that does not exist and a
// missing --to change nothing.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import {
  DEFAULT_HERALD_BIN,
  Svix,
  createPgDatabase,
  dropPgDatabase,
  eventually,
  psql,
  rawRequest,
  sleep,
  startHerald,
  startReceiver,
  uniq,
  verifyDelivery,
} from "../conformance/harness.mjs";
import { NEEDS_POSTGRES, pooled, publish } from "./support.mjs";

const BIN = process.env.HERALD_BIN || DEFAULT_HERALD_BIN;
const BULK = 2000;
// Retries 500 ms apart for as long as the test runs: the dead endpoint's delivery stays pending.
const RETRY_SCHEDULE = Array(40).fill("500ms").join(",");

const cleanups = [];
after(async () => {
  const errors = [];
  for (const c of cleanups.reverse()) await c().catch((e) => errors.push(e));
  if (errors.length) throw errors[0];
});

// The environment of a herald command: the test's, without anything that names a database or
// a key unless `extra` does.
function heraldEnv(extra = {}) {
  const env = { ...process.env };
  for (const k of ["HERALD_DB", "HERALD_MASTER_KEY", "HERALD_MASTER_KEY_FILE", "HERALD_ADMIN_TOKEN"]) delete env[k];
  return { ...env, ...extra };
}

/** Runs `herald ...args`; resolves with {code, signal, stdout, stderr, proc}. `onSpawn(proc)` sees it start. */
function runHerald(args, { env = heraldEnv(), onSpawn } = {}) {
  const proc = spawn(BIN, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (c) => (stdout += c));
  proc.stderr.on("data", (c) => (stderr += c));
  const done = new Promise((resolve, reject) => {
    proc.on("error", reject);
    proc.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, proc }));
  });
  onSpawn?.(proc);
  return done;
}

/** A SQLite `herald serve` on `dbFile`, its key file created next to it; resolves once it listens. */
async function startSqliteHerald(dbFile, token) {
  const proc = spawn(BIN, ["serve", "--listen", "127.0.0.1:0", "--db", dbFile], {
    env: heraldEnv({
      HERALD_ADMIN_TOKEN: token,
      HERALD_ALLOW_PRIVATE_CIDRS: "127.0.0.0/8",
      HERALD_RETRY_SCHEDULE: RETRY_SCHEDULE,
      HERALD_REQUEST_TIMEOUT: "1s",
      HERALD_LEASE: "3s",
      HERALD_LOG_LEVEL: "warn",
    }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  proc.stderr.on("data", (c) => (stderr += c));
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`SQLite herald did not start:\n${stdout}\n${stderr}`)), 10_000);
    proc.stdout.on("data", (c) => {
      stdout += c;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`SQLite herald exited (${code}, ${signal}) before listening:\n${stdout}\n${stderr}`));
    });
  });
  return {
    url,
    token,
    svix: new Svix(token, { serverUrl: url }),
    exited,
    /** SIGTERM; resolves with its exit once it has stopped. */
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      return Promise.race([exited, sleep(10_000).then(() => proc.kill("SIGKILL") && { timedOut: true })]);
    },
    logs: () => ({ stdout, stderr }),
  };
}

/** How many rows of `table` the database at `uri` holds (0 while it has no such table). */
async function countRows(uri, table) {
  const exists = (await psql(`SELECT to_regclass('public.${table}') IS NOT NULL`, { uri })).trim();
  if (exists !== "t") return 0;
  return Number((await psql(`SELECT count(*) FROM ${table}`, { uri })).trim());
}

/** The tables in the database at `uri`'s public schema. */
async function tables(uri) {
  return (await psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", { uri }))
    .split("\n")
    .filter(Boolean);
}

const lines = (text) => text.trim().split("\n").filter(Boolean);

/** GET `p` on `url` with `token`: {status, json}. */
async function get(url, token, p) {
  return rawRequest({ url }, "GET", p, { token });
}

describe("herald migrate-store from SQLite to PostgreSQL", { skip: NEEDS_POSTGRES }, () => {
  test("a copy killed half-way is finished by a rerun; PostgreSQL nodes go on where SQLite stopped", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "herald-migrate-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const dbFile = path.join(dir, "herald.db");
    const rx = await startReceiver();
    cleanups.push(() => rx.close());

    // --- A SQLite herald with a bit of everything ---------------------------------------------
    const adminToken = `sk_${crypto.randomBytes(20).toString("hex")}`;
    const old = await startSqliteHerald(dbFile, adminToken);
    cleanups.push(async () => old.stop());
    const svix = old.svix;
    await svix.eventType.create({ name: "invoice.paid", description: "paid" });
    await svix.eventType.create({ name: "dead.event", description: "to the dead endpoint" });
    await svix.eventType.create({ name: "bulk.event", description: "bulk" });
    const uid = uniq("acme");
    const app = await svix.application.create({ name: "Acme", uid });
    const other = await svix.application.create({ name: "Other", uid: uniq("other") });
    let revived = false;
    rx.respond("/dead", [() => (revived ? 204 : 500)]);
    const healthy = await svix.endpoint.create(app.id, { url: rx.url("/healthy"), eventTypes: ["invoice.paid"] });
    const dead = await svix.endpoint.create(app.id, { url: rx.url("/dead"), eventTypes: ["dead.event"] });
    const healthySecret = (await svix.endpoint.getSecret(app.id, healthy.id)).key;
    const deadSecret = (await svix.endpoint.getSecret(app.id, dead.id)).key;

    const scoped = await runHerald(["token", "create", "--db", dbFile, "--app", uid, "--expires", "30d", "--name", "acme ci"]);
    assert.equal(scoped.code, 0, `herald token create: ${scoped.stderr}`);
    const scopedToken = scoped.stdout.trim();
    const portal = await svix.authentication.appPortalAccess(app.id, { readOnly: true });

    const paid = [];
    for (let i = 0; i < 3; i++) {
      paid.push(await svix.message.create(app.id, { eventType: "invoice.paid", payload: { invoice: i } }));
    }
    const deadMsg = await svix.message.create(app.id, { eventType: "dead.event", payload: { dead: true } });
    const bulk = await pooled(BULK, 16, (i) => publish(old, other.id, { n: i }, { eventType: "bulk.event" }));
    const refused = bulk.filter((r) => r.status !== 202);
    assert.equal(refused.length, 0, `every bulk create is accepted: ${JSON.stringify(refused[0])?.slice(0, 300)}`);
    const total = paid.length + 1 + BULK;

    // Delivered to the healthy endpoint, and the dead one tried twice (its attempts recorded).
    await rx.waitFor("/healthy", paid.length, 10_000);
    await rx.waitFor("/dead", 2, 10_000);
    const attemptsOf = async (client, ep) =>
      (await client.messageAttempt.listByEndpoint(app.id, ep.id, { limit: 100 })).data;
    const healthyAttempts = await eventually(
      async () => {
        const a = await attemptsOf(svix, healthy);
        return a.length === paid.length && a;
      },
      { message: "the healthy endpoint's attempts recorded", timeoutMs: 10_000 },
    );
    const deadAttempts = await attemptsOf(svix, dead);
    assert.ok(deadAttempts.length >= 2, `the dead endpoint's failed attempts are listed: ${deadAttempts.length}`);
    assert.ok(deadAttempts.every((a) => a.status === 2), "the dead endpoint's attempts failed");
    const exit = await old.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, `the SQLite herald exits 0 after SIGTERM: ${old.logs().stderr}`);
    const masterKey = readFileSync(`${dbFile}.key`, "utf8").trim();

    const target = await createPgDatabase();
    cleanups.push(() => dropPgDatabase(target));

    // --- What must change nothing ---------------------------------------------------------------
    const noTo = await runHerald(["migrate-store", "--from", dbFile]);
    assert.equal(noTo.code, 2, `missing --to: exit 2 (${noTo.stderr})`);
    assert.equal(lines(noTo.stderr).length, 1, `missing --to: one line: ${noTo.stderr}`);
    assert.match(noTo.stderr, /--to/);

    const wrongKey = await runHerald(["migrate-store", "--from", dbFile, "--to", target], {
      env: heraldEnv({ HERALD_MASTER_KEY: crypto.randomBytes(32).toString("base64") }),
    });
    assert.equal(wrongKey.code, 1, `a wrong HERALD_MASTER_KEY fails (exit 1): ${wrongKey.stderr}`);
    assert.equal(wrongKey.signal, null);
    assert.equal(lines(wrongKey.stderr).length, 1, `a wrong key: one line: ${wrongKey.stderr}`);
    assert.match(wrongKey.stderr, /HERALD_MASTER_KEY/);
    assert.deepEqual(await tables(target), [], "a wrong key writes nothing to the target");

    // A --from that names no file must not create an empty store there and copy it (the
    // target would then adopt a master key made up for that empty store).
    const typo = path.join(dir, "typo.db");
    const noSource = await runHerald(["migrate-store", "--from", typo, "--to", target]);
    assert.equal(noSource.code, 1, `a --from that does not exist fails (exit 1): ${noSource.stderr}`);
    assert.equal(lines(noSource.stderr).length, 1, `a --from that does not exist: one line: ${noSource.stderr}`);
    assert.deepEqual(await tables(target), [], "a --from that does not exist writes nothing to the target");

    // --- The copy, SIGKILLed half-way, then run again to the end --------------------------------
    const migrate = ["migrate-store", "--from", dbFile, "--to", target];
    let partial = 0;
    const killed = await runHerald(migrate, {
      onSpawn: (proc) => {
        (async () => {
          const deadline = Date.now() + 20_000;
          while (proc.exitCode === null && Date.now() < deadline) {
            const n = await countRows(target, "messages").catch(() => 0);
            if (n > 0) {
              proc.kill("SIGKILL");
              return;
            }
            await sleep(5);
          }
        })();
      },
    });
    assert.equal(killed.signal, "SIGKILL", `the first copy was killed mid-way: exit ${killed.code}\n${killed.stderr}`);
    partial = await countRows(target, "messages");
    assert.ok(partial > 0 && partial < total, `the killed copy left some but not all messages: ${partial} of ${total}`);

    const rerun = await runHerald(migrate);
    assert.equal(rerun.code, 0, `the rerun completes: ${rerun.stderr}`);
    assert.match(rerun.stderr, /verified/, rerun.stderr);
    const copied = /copied (\d+) messages \((\d+) were there already\)/.exec(rerun.stderr);
    assert.ok(copied, rerun.stderr);
    assert.equal(Number(copied[2]), partial, "the rerun found what the killed copy had committed");
    assert.equal(Number(copied[1]) + partial, total, "and copied the rest");
    const counts = (which) => new RegExp(`herald: ${which}: (.*)`).exec(rerun.stderr)?.[1];
    assert.ok(counts("source"), rerun.stderr);
    assert.equal(counts("target"), counts("source"), "every count matches");
    assert.match(counts("target"), new RegExp(`messages ${total},`));
    assert.equal(await countRows(target, "messages"), total);

    // --- Two PostgreSQL nodes under the SQLite key file's key -----------------------------------
    revived = true;
    const deadBefore = rx.requests("/dead").length;
    const h = await startHerald({
      dbPath: target,
      masterKey,
      token: adminToken, // only migrated: the nodes get no HERALD_ADMIN_TOKEN to store
      env: { HERALD_ADMIN_TOKEN: undefined, HERALD_RETRY_SCHEDULE: RETRY_SCHEDULE },
    });
    cleanups.push(() => h.stop());

    // The message still pending at the dead endpoint is delivered now, signed with its old secret.
    const [, ...after] = await rx.waitFor("/dead", deadBefore + 1, 10_000).then((r) => r.slice(deadBefore - 1));
    verifyDelivery(deadSecret, after[0], { msgId: deadMsg.id, payload: { dead: true }, what: "the pending delivery" });

    for (const node of h.nodes) {
      assert.equal((await node.svix.endpoint.getSecret(app.id, healthy.id)).key, healthySecret, `${node.name}: same secret`);
      assert.equal((await node.svix.endpoint.getSecret(uid, dead.id)).key, deadSecret, `${node.name}: same secret`);
      // The admin token: it reads every app.
      const apps = (await node.svix.application.list({ limit: 100 })).data.map((a) => a.id);
      assert.deepEqual(apps.sort(), [app.id, other.id].sort(), `${node.name}: the admin token works`);
      // The scoped token: its own app, nothing else, and its expiry.
      const mine = await get(node.url, scopedToken, `/api/v1/app/${uid}/msg`);
      assert.equal(mine.status, 200, `${node.name}: the scoped token reads its app: ${mine.text}`);
      assert.equal(mine.json.data.length, paid.length + 1);
      assert.equal((await get(node.url, scopedToken, `/api/v1/app/${other.id}/msg`)).status, 404);
      const who = await get(node.url, scopedToken, "/api/v1/auth/whoami");
      assert.equal(who.json.appId, app.id);
      assert.ok(who.json.expiresAt, `the scoped token keeps its expiry: ${who.text}`);
      // The portal link: read-only, to its app.
      const viaPortal = await get(node.url, portal.token, `/api/v1/app/${app.id}/endpoint`);
      assert.equal(viaPortal.status, 200, `${node.name}: the portal link reads its app: ${viaPortal.text}`);
      const portalWho = await get(node.url, portal.token, "/api/v1/auth/whoami");
      assert.deepEqual([portalWho.json.appId, portalWho.json.readOnly], [app.id, true]);
      const write = await rawRequest(node, "POST", `/api/v1/app/${app.id}/msg`, {
        token: portal.token,
        body: { eventType: "invoice.paid", payload: {} },
      });
      assert.equal(write.status, 403, `${node.name}: the portal link may not write: ${write.status} ${write.text}`);
      // Attempts made before the migration are listed.
      const ids = (await attemptsOf(node.svix, healthy)).map((a) => a.id);
      assert.deepEqual(ids, healthyAttempts.map((a) => a.id), `${node.name}: the healthy endpoint's attempts`);
      const deadIds = new Set((await attemptsOf(node.svix, dead)).map((a) => a.id));
      for (const a of deadAttempts) assert.ok(deadIds.has(a.id), `${node.name}: attempt ${a.id} made before the copy`);
    }
    // The success is recorded too: a new attempt on top of the old failures.
    await eventually(
      async () => (await attemptsOf(h.svix, dead)).some((a) => a.status === 0 && a.msgId === deadMsg.id),
      { message: "the successful attempt at the dead endpoint listed" },
    );
    // And the new nodes deliver new messages with the same secret.
    const fresh = await h.svix.message.create(app.id, { eventType: "invoice.paid", payload: { after: true } });
    const [, , , r] = await rx.waitFor("/healthy", paid.length + 1, 10_000);
    verifyDelivery(healthySecret, r, { msgId: fresh.id, payload: { after: true }, what: "a new message" });
    await h.stop();
  });
});
