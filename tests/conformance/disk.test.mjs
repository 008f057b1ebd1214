// A full disk: herald's SQLite file on a small tmpfs that the test fills. While the store cannot
// write, message creation is a 503 with Retry-After that leaves nothing behind; what was
// acknowledged is still delivered; when space returns herald goes on by itself, no restart.
// Mounting needs root: as another user the suite says so and skips. PostgreSQL keeps its data
// on its own server's disk (a full one there is the same 503: docs/API.md), so this is SQLite's.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, statSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { collectAll, eventually, onSqlite, rawRequest, startHerald, startReceiver, uniq } from "./harness.mjs";

// Why this machine cannot run the test, or false when it can: mounting needs root, and a
// container may refuse it even to root.
function cannotMount() {
  if (process.getuid?.() !== 0) return "mounting a tmpfs needs root: run the suite as root to test a full disk";
  const probe = mkdtempSync(path.join(tmpdir(), "herald-disk-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], { stdio: "pipe" });
    execFileSync("umount", [probe]);
    return false;
  } catch (e) {
    return `this machine refuses to mount a tmpfs even to root (${String(e.stderr ?? e.message).trim()})`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const skip = !onSqlite ? "SQLite's file only: PostgreSQL's disk is its server's" : cannotMount();

const RESERVE = 4 << 20; // of the tmpfs's 24 MiB

// Writes zeros to `file` until the filesystem has no byte left.
function fill(file) {
  const fd = openSync(file, "a");
  try {
    for (const size of [1 << 20, 64 << 10, 4096, 512, 1]) {
      const chunk = Buffer.alloc(size);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (e) {
        if (e.code !== "ENOSPC") throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
}

describe("a full disk", { skip }, () => {
  let mnt;
  let h;
  let rx;

  before(async () => {
    mnt = mkdtempSync(path.join(tmpdir(), "herald-disk-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", mnt]);
    rx = await startReceiver();
    // A short lease: a send whose result could not be recorded goes again soon.
    h = await startHerald({ dbPath: path.join(mnt, "herald.db"), env: {
        HERALD_LEASE: "3s",
        HERALD_REQUEST_TIMEOUT: "1s",
        HERALD_DISK_RESERVE_BYTES: String(RESERVE),
      }, });
  });

  after(async () => {
    await h?.stop({ keepDir: true });
    await rx?.close();
    if (mnt) {
      try {
        execFileSync("umount", [mnt]);
      } finally {
        rmSync(mnt, { recursive: true, force: true });
      }
    }
  });

  test("creation is a 503 with Retry-After that leaves nothing; acknowledged messages arrive; space back, herald goes on", async () => {
    const app = await h.svix.application.create({ name: "disk", uid: uniq("disk") });
    const p = `/${uniq("disk")}`;
    // Each message's first two tries fail: its retries, and the recording of every try, fall in
    // the time the disk is full.
    const tries = new Map();
    rx.respond(p, [
      (r) => {
        const n = JSON.parse(r.body).n;
        tries.set(n, (tries.get(n) ?? 0) + 1);
        return tries.get(n) <= 2 ? 503 : 200;
      },
    ]);
    await h.svix.endpoint.create(app.id, { url: rx.url(p) });
    const publish = (n, padBytes) =>
      rawRequest(h, "POST", `/api/v1/app/${app.id}/msg`, {
        body: { eventType: "disk.test", payload: { n, pad: "x".repeat(padBytes) } },
      });
    const acked = new Map(); // id -> n
    for (let n = 0; n < 5; n++) {
      const r = await publish(n, 1000);
      assert.equal(r.status, 202, r.text);
      acked.set(r.json.id, n);
    }

    const ballast = path.join(mnt, "herald.db.reserve");
    assert.equal(statSync(ballast).size, RESERVE, "the reserve is kept beside the database");

    const filler = path.join(mnt, "filler");
    fill(filler);
    // herald sees the disk fill within a look (200 ms) and gives the reserve to what it records.
    await eventually(() => !existsSync(ballast), { timeoutMs: 3000, message: "the reserve given up" });
    // Payloads of 200 KB cannot fit now: every one must be refused, cleanly.
    const refused = [];
    for (let n = 100; n < 110; n++) {
      const r = await publish(n, 200_000);
      assert.equal(r.status, 503, `a full disk is a 503: ${r.status} ${r.text}`);
      assert.equal(r.json?.code, "unavailable", r.text);
      assert.equal(r.headers["retry-after"], "1", "a 503 says when to try again");
      assert.match(r.json.detail, /nearly full/, r.text);
      refused.push(n);
    }
    assert.equal(refused.length, 10, "every large message refused while the disk is full");
    const health = await rawRequest(h, "GET", "/api/v1/health");
    assert.equal(health.status, 204, "herald is up while its disk is full");
    // Acknowledged messages are still sent while the disk is full.
    const early = [...acked.values()].filter((n) => n < 5);
    await eventually(() => early.every((n) => (tries.get(n) ?? 0) >= 2), {
      timeoutMs: 10_000,
      message: "the acknowledged messages tried again while the disk is full",
    });

    // Space returns: herald takes messages again by itself.
    unlinkSync(filler);
    const after = await eventually(
      async () => {
        const r = await publish(1000, 200_000);
        return r.status === 202 ? r : null;
      },
      { timeoutMs: 5000, message: "a message accepted once space is back" },
    );
    acked.set(after.json.id, 1000);
    assert.equal(statSync(ballast).size, RESERVE, "the reserve is made again");

    // Every acknowledged message arrives; no refused one ever does, nor is it listed.
    const arrived = () => new Set(rx.requests(p).map((r) => r.headers["webhook-id"]));
    await eventually(() => [...acked.keys()].every((id) => arrived().has(id)), {
      timeoutMs: 15_000,
      message: "every acknowledged message at the receiver",
    });
    const sentNs = new Set(rx.requests(p).map((r) => JSON.parse(r.body).n));
    for (const n of refused) assert.ok(!sentNs.has(n), `refused message ${n} was delivered`);
    const listed = (await collectAll((iterator) => h.svix.message.list(app.id, { iterator, limit: 250 }))).flatMap(
      (page) => page.data,
    );
    assert.deepEqual(listed.map((m) => m.id).sort(), [...acked.keys()].sort(), "exactly the acknowledged messages");
  });
});
