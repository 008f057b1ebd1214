// Conformance harness: starts a real herald process and a loopback webhook receiver,
// and verifies deliveries with the official standardwebhooks library and svix's Webhook.
//
// Everything the tests do against herald goes through the official `svix` SDK, except
// the few requests the SDK refuses to make (malformed bodies, oversized bodies, missing
// auth), which go through `rawRequest` below.

import { execFile, spawn } from "node:child_process";
import crypto from "node:crypto";
import { EventEmitter } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

import { ApiException, Svix, Webhook as SvixWebhook } from "svix";
import { Webhook as StdWebhook } from "standardwebhooks";

export { ApiException, Svix, SvixWebhook, StdWebhook };

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const DEFAULT_HERALD_BIN = path.resolve(HERE, "../../build/herald");

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Random alphanumeric string of `len` characters. */
export function randomToken(len = 40) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.randomBytes(len);
  let out = "";
  for (let i = 0; i < len; i++) out += alphabet[bytes[i] % alphabet.length];
  return out;
}

/** A unique suffix for uids / paths so tests never collide. */
export function uniq(prefix = "t") {
  return `${prefix}-${Date.now().toString(36)}-${crypto.randomBytes(4).toString("hex")}`;
}

/** "whsec_" + base64 of `n` random bytes (Svix's secret format). */
export function makeSecret(n = 24) {
  return "whsec_" + crypto.randomBytes(n).toString("base64");
}

// ---------------------------------------------------------------------------
// Stores
// ---------------------------------------------------------------------------

/**
 * The store the suite runs against: HERALD_TEST_STORE=postgres selects PostgreSQL (a throwaway
 * server whose maintenance database is HERALD_TEST_PG_URI), anything else the SQLite default.
 */
export const STORE = process.env.HERALD_TEST_STORE === "postgres" ? "postgres" : "sqlite";
export const onPostgres = STORE === "postgres";
export const onSqlite = !onPostgres;

/** The URI of the throwaway server's maintenance database; throws a clear error when unset. */
export function pgMaintenanceUri() {
  const uri = process.env.HERALD_TEST_PG_URI;
  if (!uri) {
    throw new Error(
      "HERALD_TEST_STORE=postgres needs HERALD_TEST_PG_URI (the URI of a test server's maintenance " +
        "database, e.g. from scripts/pg-test-server.sh start DIR)",
    );
  }
  return uri;
}

/** `uri` with its database name replaced by `name` (libpq URI: postgresql://[auth@host]/name?...). */
export function pgUriFor(name, uri = pgMaintenanceUri()) {
  const m = /^(postgres(?:ql)?:\/\/[^/?]*)(?:\/[^?]*)?(\?.*)?$/.exec(uri);
  if (!m) throw new Error(`HERALD_TEST_PG_URI is not a postgresql:// URI: ${uri}`);
  return `${m[1]}/${name}${m[2] ?? ""}`;
}

/** Runs psql with `sql` on `uri` (default: the maintenance database); resolves with its stdout. */
export function psql(sql, { uri = pgMaintenanceUri(), timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(
      "psql",
      [uri, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
      { timeout: timeoutMs, env: { ...process.env, PGCONNECT_TIMEOUT: "10" }, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`psql -c ${JSON.stringify(sql)}: ${err.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

/** A plain-text pg_dump of the database at `uri`, as a Buffer (what a copy of it would hold). */
export function pgDump(uri, { timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(
      "pg_dump",
      ["--no-owner", "--format=plain", uri],
      { timeout: timeoutMs, encoding: "buffer", maxBuffer: 256 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`pg_dump: ${err.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

/**
 * What a copy of the database holds: on SQLite the bytes of its files (the WAL included), on
 * PostgreSQL a pg_dump of it.
 */
export async function databaseCopy(dbPath) {
  if (onPostgres) return pgDump(dbPath);
  const parts = [readFileSync(dbPath)];
  if (existsSync(`${dbPath}-wal`)) parts.push(readFileSync(`${dbPath}-wal`));
  return Buffer.concat(parts);
}

let pgDatabaseSeq = 0;

/** Creates an empty database on the test server; resolves with its URI. */
export async function createPgDatabase() {
  const name = `herald_t_${process.pid}_${++pgDatabaseSeq}_${crypto.randomBytes(3).toString("hex")}`;
  await psql(`CREATE DATABASE ${name}`);
  return pgUriFor(name);
}

/** The database name in a postgresql:// URI. */
export function pgDatabaseName(uri) {
  const m = /^postgres(?:ql)?:\/\/[^/?]*\/([^?]*)/.exec(uri);
  if (!m || !/^[a-z0-9_]+$/.test(m[1])) throw new Error(`not a test database URI: ${uri}`);
  return m[1];
}

/** Drops the database of `uri` (connections to it are cut off). */
export async function dropPgDatabase(uri) {
  await psql(`DROP DATABASE IF EXISTS ${pgDatabaseName(uri)} WITH (FORCE)`);
}

// The master key of each PostgreSQL database this process made, so that a later startHerald
// on the same URI (a restart) opens it without the test passing the key along.
const pgMasterKeys = new Map();

// ---------------------------------------------------------------------------
// herald process
// ---------------------------------------------------------------------------

const READY_RE = /listening on (http:\/\/127\.0\.0\.1:(\d+))/;

// What AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer and ThreadSanitizer print.
const SANITIZER_RE =
  /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: |WARNING: ThreadSanitizer|SUMMARY: \w+Sanitizer/;

// Problems with herald processes (a crash, a non-zero exit after SIGTERM, a sanitizer report, a
// process never stopped). stop() throws them; they also fail the test file when it exits, in
// case a test swallowed the error.
const processProblems = [];
const liveNodes = new Set();
process.on("exit", () => {
  for (const node of liveNodes) {
    node.kill("SIGKILL");
    processProblems.push(`herald node ${node.name} (pid ${node.proc.pid}) was never stopped`);
  }
  if (processProblems.length) {
    process.exitCode = 1;
    console.error(`harness: problems with herald processes:\n- ${processProblems.join("\n- ")}`);
  }
});

/**
 * Spawns one `herald serve` and resolves once it printed its "listening on" line. The node:
 * {name, url, token, svix, proc, exitPromise, listenStream, logs(), exited(), kill(signal),
 * signalsSent}. `proc.kill` is wrapped too, so a signal a test sends is known to stop().
 */
async function startNode({ bin, args, env, token, name, readyTimeoutMs, logLimitBytes }) {
  const proc = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const signalsSent = [];
  const rawKill = proc.kill.bind(proc);
  proc.kill = (signal = "SIGTERM") => {
    signalsSent.push(signal);
    return rawKill(signal);
  };

  let stdout = "";
  let stderr = "";
  let sanitizerReport = false;
  const MAX_LOG = logLimitBytes;
  const keep = (s, chunk) => {
    const text = chunk.toString("utf8");
    if (SANITIZER_RE.test(s.slice(-200) + text)) sanitizerReport = true;
    s += text;
    return s.length > MAX_LOG ? s.slice(s.length - MAX_LOG) : s;
  };

  let exited = null; // {code, signal}
  const exitPromise = new Promise((resolve) => {
    proc.on("exit", (code, signal) => {
      exited = { code, signal };
      liveNodes.delete(node);
      resolve(exited);
    });
  });
  const node = {
    name,
    token,
    proc,
    exitPromise,
    signalsSent,
    rawKill,
    kill: (signal) => proc.kill(signal),
    exited: () => exited,
    sanitizerReport: () => sanitizerReport,
    logs: () => ({ stdout, stderr }),
  };
  liveNodes.add(node);

  let listenStream = null;
  const url = await new Promise((resolve, reject) => {
    let done = false;
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value);
    };
    const describe = () =>
      `\n--- herald ${name} stdout ---\n${stdout}\n--- herald ${name} stderr ---\n${stderr}\n---`;
    const timer = setTimeout(() => {
      rawKill("SIGKILL");
      finish(
        new Error(
          `herald ${name} did not print "listening on http://127.0.0.1:<port>" on stdout within ` +
            `${readyTimeoutMs} ms (bin ${bin}, args ${JSON.stringify(args)})${describe()}`,
        ),
      );
    }, readyTimeoutMs);
    proc.stdout.on("data", (chunk) => {
      stdout = keep(stdout, chunk);
      const m = READY_RE.exec(stdout);
      if (m && !listenStream) {
        listenStream = "stdout";
        finish(null, m[1]);
      }
    });
    proc.stderr.on("data", (chunk) => {
      stderr = keep(stderr, chunk);
      // The contract says stdout; accept stderr so the rest of the suite can run, and
      // record where it came from (apps.test.mjs asserts it was stdout).
      const m = READY_RE.exec(stderr);
      if (m && !listenStream) {
        listenStream = "stderr";
        finish(null, m[1]);
      }
    });
    proc.on("error", (err) => finish(new Error(`failed to spawn ${bin}: ${err.message}`)));
    proc.on("exit", (code, signal) =>
      finish(
        new Error(
          `herald ${name} exited (code ${code}, signal ${signal}) before becoming ready${describe()}`,
        ),
      ),
    );
  }).catch(async (e) => {
    // Gone before it was ready (or killed for being late): wait for the exit, within reason.
    await Promise.race([exitPromise, sleep(5000)]);
    throw e;
  });
  node.url = url;
  node.listenStream = listenStream;
  node.svix = instrumentSvix(new Svix(token, { serverUrl: url }));
  return node;
}

/**
 * Stops `node` with SIGTERM (SIGKILL after `timeoutMs`) unless it exited already; resolves with
 * {exit, problems}: what is wrong with how it ended (nothing when a signal the test sent ended
 * it, or when it exited 0 after SIGTERM/SIGINT, and it printed no sanitizer report).
 */
async function stopNode(node, timeoutMs) {
  const problems = [];
  const ranOnItsOwnTo = node.exited();
  let forced = false;
  if (!ranOnItsOwnTo) {
    node.rawKill("SIGTERM");
    const t = setTimeout(() => {
      forced = true;
      node.rawKill("SIGKILL");
    }, timeoutMs);
    await node.exitPromise;
    clearTimeout(t);
  }
  const exit = node.exited();
  const clean = exit.code === 0 && exit.signal === null;
  const tail = () => {
    const { stdout, stderr } = node.logs();
    return `\n--- stdout (tail) ---\n${stdout.slice(-3000)}\n--- stderr (tail) ---\n${stderr.slice(-6000)}\n---`;
  };
  if (forced) {
    problems.push(`herald ${node.name} was still running ${timeoutMs} ms after SIGTERM (killed)${tail()}`);
  } else if (!ranOnItsOwnTo && !clean) {
    problems.push(`herald ${node.name} exited with ${JSON.stringify(exit)} after SIGTERM, not 0${tail()}`);
  } else if (ranOnItsOwnTo) {
    const sent = node.signalsSent;
    if (sent.length === 0 && !clean) {
      problems.push(`herald ${node.name} died on its own before stop(): ${JSON.stringify(exit)}${tail()}`);
    } else if (sent.length > 0 && !sent.includes("SIGKILL") && !clean) {
      problems.push(
        `herald ${node.name} exited with ${JSON.stringify(exit)} after the test's ${sent.join(", ")}, not 0${tail()}`,
      );
    }
  }
  if (node.sanitizerReport()) problems.push(`herald ${node.name} printed a sanitizer report${tail()}`);
  return { exit, problems };
}

/**
 * Start `herald serve` on ephemeral ports with a fresh database, and resolve once it serves.
 *
 * On SQLite (the default) that is one process on a new file in a temp dir. With
 * HERALD_TEST_STORE=postgres it is a fresh database on the test server and, unless
 * `opts.nodes` says otherwise, TWO processes on it (same admin token, same random
 * HERALD_MASTER_KEY) behind a round-robin proxy that sends each request to the next node, so
 * every call a test makes alternates between them.
 *
 * opts.retrySchedule  HERALD_RETRY_SCHEDULE (default "100ms,200ms,400ms")
 * opts.env            extra environment variables (a value of undefined removes one), for
 *                     every node; opts.nodeEnv[i] adds to node i's only
 * opts.args           extra command-line arguments
 * opts.readyTimeoutMs how long to wait for the "listening on" line (default 10 s)
 * opts.logLimitBytes  how much of each node's stdout and stderr logs() keeps (the last 256 KiB)
 * opts.dbPath         reuse this database (e.g. to restart after a crash) instead of a fresh
 *                     one: a file path on SQLite, the database's URI (h.dbPath) on PostgreSQL
 * opts.token          admin token to use (default: a fresh random one)
 * opts.nodes          how many herald processes (PostgreSQL only; default 2; 1 for a test
 *                     about one process, e.g. its restart or shutdown)
 * opts.masterKey      PostgreSQL: HERALD_MASTER_KEY (default: the key this process used for
 *                     opts.dbPath before, else a new random one); null sets none
 *
 * Resolves with {url, token, svix, dbPath, dir, store, masterKey, nodes, proxy, stop, logs,
 * listenStream} and, with one node, that node's proc and exitPromise. `nodes[i]` has its own
 * url, svix, proc, exitPromise, logs() and kill(signal).
 *
 * stop({timeoutMs, keepDir, check}) sends SIGTERM to every node still running and resolves
 * with {code, signal}: the node's exit status with one node; with several, {code: 0,
 * signal: null} when all exited 0, else the first other one; `.nodes` (not enumerable) lists
 * each node's. Unless `check: false` it throws when a node exited other than 0 after SIGTERM
 * or SIGINT, died on its own, outlived the timeout or printed a sanitizer report (a node the
 * test killed with SIGKILL is fine). It removes the temp dir and, on PostgreSQL, drops the
 * database, unless keepDir: true.
 */
export async function startHerald(opts = {}) {
  const bin = process.env.HERALD_BIN || DEFAULT_HERALD_BIN;
  if (!existsSync(bin)) {
    throw new Error(
      `herald binary not found at ${bin} (set HERALD_BIN or build it with ` +
        "`cmake --build build --target herald` in the repository root)",
    );
  }
  const nodeCount = opts.nodes ?? (onPostgres ? 2 : 1);
  if (onSqlite && nodeCount !== 1) throw new Error("startHerald: SQLite takes one process (nodes: 1)");

  let dir;
  let dbPath;
  let masterKey;
  if (onPostgres) {
    dir = mkdtempSync(path.join(tmpdir(), "herald-conf-"));
    dbPath = opts.dbPath ?? (await createPgDatabase());
    masterKey =
      opts.masterKey === null
        ? undefined
        : opts.masterKey ?? pgMasterKeys.get(dbPath) ?? crypto.randomBytes(32).toString("base64");
    if (masterKey !== undefined && !pgMasterKeys.has(dbPath)) pgMasterKeys.set(dbPath, masterKey);
  } else {
    dir = opts.dbPath ? path.dirname(opts.dbPath) : mkdtempSync(path.join(tmpdir(), "herald-conf-"));
    dbPath = opts.dbPath ?? path.join(dir, "herald.db");
  }
  const token = opts.token ?? randomToken(40);
  const baseEnv = {
    ...process.env,
    HERALD_ADMIN_TOKEN: token,
    HERALD_RETRY_SCHEDULE: opts.retrySchedule ?? "100ms,200ms,400ms",
    HERALD_ALLOW_PRIVATE_CIDRS: "127.0.0.0/8",
    HERALD_REQUEST_TIMEOUT: "2s",
    HERALD_LOG_LEVEL: "warn",
    ...(masterKey !== undefined ? { HERALD_MASTER_KEY: masterKey } : {}),
    ...(opts.env ?? {}),
  };
  const args = ["serve", "--listen", "127.0.0.1:0", "--db", dbPath, ...(opts.args ?? [])];
  // Several nodes sit behind a proxy that listens before they start, so that the links they
  // hand out (portal access) name it, as HERALD_PUBLIC_URL names a load balancer in production.
  const members = [];
  const proxy = nodeCount > 1 ? await startRoundRobinProxy(members) : null;
  if (proxy && opts.env?.HERALD_PUBLIC_URL === undefined) baseEnv.HERALD_PUBLIC_URL = proxy.url;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;

  // The temp dir (on SQLite the database's), and on PostgreSQL the database.
  const removeStorage = async () => {
    rmSync(dir, { recursive: true, force: true });
    if (onPostgres) await dropPgDatabase(dbPath);
  };

  // All nodes at once: concurrent starts on one database are part of what is tested.
  const started = await Promise.allSettled(
    Array.from({ length: nodeCount }, (_, i) => {
      const env = { ...baseEnv, ...(opts.nodeEnv?.[i] ?? {}) };
      for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
      const name = nodeCount === 1 ? "node" : `node ${i}`;
      return startNode({ bin, args, env, token, name, readyTimeoutMs, logLimitBytes: opts.logLimitBytes ?? 256 * 1024 });
    }),
  );
  const failed = started.filter((s) => s.status === "rejected");
  if (failed.length) {
    if (proxy) await proxy.close();
    for (const s of started) if (s.status === "fulfilled") await stopNode(s.value, 5000);
    if (onPostgres) rmSync(dir, { recursive: true, force: true });
    if (!opts.dbPath) await removeStorage().catch(() => {}); // not a database the caller gave
    throw failed[0].reason;
  }
  const nodes = started.map((s) => s.value);
  members.push(...nodes);
  const url = proxy ? proxy.url : nodes[0].url;
  const svix = instrumentSvix(new Svix(token, { serverUrl: url }));

  let stopping = null;
  function stop({ timeoutMs = 5000, keepDir = false, check = true } = {}) {
    stopping ??= (async () => {
      if (proxy) await proxy.close();
      const results = await Promise.all(nodes.map((n) => stopNode(n, timeoutMs)));
      const problems = results.flatMap((r) => r.problems);
      const testKilledOne = nodes.some((n) => n.signalsSent.length > 0);
      if (proxy && !testKilledOne && proxy.errors.length) {
        problems.push(`the proxy could not reach a node ${proxy.errors.length} time(s): ${proxy.errors.slice(0, 5).join("; ")}`);
      }
      if (!keepDir) await removeStorage();
      const exits = results.map((r) => r.exit);
      const status =
        exits.length === 1
          ? { ...exits[0] }
          : { ...(exits.find((e) => !(e.code === 0 && e.signal === null)) ?? { code: 0, signal: null }) };
      Object.defineProperty(status, "nodes", { value: exits, enumerable: false });
      return { status, problems };
    })();
    return stopping.then(({ status, problems }) => {
      if (problems.length && check) {
        processProblems.push(...problems.map((p) => p.split("\n")[0]));
        throw new Error(`stop(): ${problems.join("\n")}`);
      }
      return status;
    });
  }

  const logs = () => {
    if (nodes.length === 1) return nodes[0].logs();
    const all = nodes.map((n) => ({ n, l: n.logs() }));
    return {
      stdout: all.map(({ n, l }) => `[${n.name}]\n${l.stdout}`).join("\n"),
      stderr: all.map(({ n, l }) => `[${n.name}]\n${l.stderr}`).join("\n"),
    };
  };

  return {
    url,
    token,
    svix,
    dbPath,
    dir,
    store: STORE,
    masterKey,
    nodes,
    proxy,
    stop,
    logs,
    listenStream: nodes.find((n) => n.listenStream !== "stdout")?.listenStream ?? "stdout",
    proc: nodes.length === 1 ? nodes[0].proc : undefined,
    exitPromise: nodes.length === 1 ? nodes[0].exitPromise : Promise.all(nodes.map((n) => n.exitPromise)),
  };
}

// Headers that belong to one connection, not to the request the proxy passes on.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * An HTTP proxy on 127.0.0.1:0 that passes each request to the next of `nodes` in turn
 * (a new upstream connection per request, so nothing is pinned to a node). A node whose
 * process has exited is skipped, and a refused connection moves on to the next node, as a load
 * balancer would; when none takes it the answer is 502 JSON. Each response carries
 * `x-herald-node: <index>`. Returns {url, counts(), errors, close()}.
 */
export async function startRoundRobinProxy(nodes) {
  let next = 0;
  const counts = nodes.map(() => 0);
  const errors = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("error", () => res.destroy());
    req.on("end", () => {
      const first = next;
      next = (next + 1) % nodes.length;
      const order = nodes.map((_, i) => (first + i) % nodes.length);
      const live = order.filter((i) => !nodes[i].exited());
      forward(req, Buffer.concat(chunks), res, live.length ? live : order);
    });
  });

  function forward(req, body, res, candidates) {
    const [i, ...rest] = candidates;
    const target = new URL(nodes[i].url);
    const headers = {};
    for (let k = 0; k < req.rawHeaders.length; k += 2) {
      const name = req.rawHeaders[k].toLowerCase();
      if (HOP_BY_HOP.has(name) || name === "content-length") continue;
      headers[name] = name in headers ? `${headers[name]}, ${req.rawHeaders[k + 1]}` : req.rawHeaders[k + 1];
    }
    if (body.length || !["GET", "HEAD", "DELETE", "OPTIONS"].includes(req.method)) {
      headers["content-length"] = String(body.length);
    }
    headers.connection = "close";
    let answered = false;
    const up = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: false },
      (upRes) => {
        answered = true;
        counts[i]++;
        const out = {};
        for (let k = 0; k < upRes.rawHeaders.length; k += 2) {
          const name = upRes.rawHeaders[k].toLowerCase();
          if (HOP_BY_HOP.has(name)) continue;
          out[name] = name in out ? `${out[name]}, ${upRes.rawHeaders[k + 1]}` : upRes.rawHeaders[k + 1];
        }
        out["x-herald-node"] = String(i);
        res.writeHead(upRes.statusCode, upRes.statusMessage, out);
        upRes.pipe(res);
        upRes.on("error", () => res.destroy());
        upRes.on("aborted", () => res.destroy());
      },
    );
    up.on("error", (err) => {
      if (answered) return; // e.g. herald closed after answering early (413)
      if (err.code === "ECONNREFUSED" && rest.length) {
        forward(req, body, res, rest);
        return;
      }
      errors.push(`${req.method} ${req.url} → ${nodes[i].name}: ${err.message}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const text = JSON.stringify({ code: "proxy_error", detail: `${nodes[i].name}: ${err.message}` });
      res.writeHead(502, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      res.end(text);
    });
    up.end(body);
  }

  server.keepAliveTimeout = 5000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    counts: () => [...counts],
    errors,
    async close() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Run the herald binary to completion (for command-line checks). Resolves with
 * {code, signal, stdout, stderr}; kills it and rejects after `timeoutMs`.
 */
export function runHerald(args, { env = {}, timeoutMs = 5000 } = {}) {
  const bin = process.env.HERALD_BIN || DEFAULT_HERALD_BIN;
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (c) => (stdout += c));
    proc.stderr.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`herald ${args.join(" ")} still running after ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    proc.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Wrap a Svix client so that an ApiException thrown by any SDK call names the call and carries
 * the response body in its message (the SDK's own message only has the status code). The
 * thrown object is still the SDK's ApiException, with `code` and `body` untouched.
 */
export function instrumentSvix(client) {
  const wrapResource = (resource, resourceName) =>
    new Proxy(resource, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== "function") return value;
        return (...args) => {
          const result = value.apply(target, args);
          if (!result || typeof result.then !== "function") return result;
          return result.catch((e) => {
            if (e instanceof ApiException && !e.__instrumented) {
              e.__instrumented = true;
              const shownArgs = args.map((a) => JSON.stringify(a)?.slice(0, 200)).join(", ");
              e.message =
                `svix.${resourceName}.${String(prop)}(${shownArgs}) → HTTP ${e.code} ` +
                `${typeof e.body === "string" ? e.body.slice(0, 500) : JSON.stringify(e.body)?.slice(0, 500)}`;
            }
            throw e;
          });
        };
      },
    });
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      return value && typeof value === "object" ? wrapResource(value, String(prop)) : value;
    },
  });
}

// ---------------------------------------------------------------------------
// Raw HTTP (for requests the SDK will not make)
// ---------------------------------------------------------------------------

/**
 * Send a raw request to herald. `body` may be a string/Buffer (sent as-is) or any other value
 * (JSON-encoded). `token: null` sends no Authorization header.
 * Resolves as soon as the response is complete, even if the server answered before reading
 * the whole body (as a server rejecting an oversized body may do).
 * Returns {status, headers, text, json, jsonError}.
 */
export function rawRequest(h, method, urlPath, { body, token, headers = {} } = {}) {
  const target = new URL(h.url + urlPath);
  let payload;
  if (body === undefined) payload = undefined;
  else if (typeof body === "string" || Buffer.isBuffer(body)) payload = Buffer.from(body);
  else payload = Buffer.from(JSON.stringify(body));
  const hdrs = { accept: "application/json", ...headers };
  const tok = token === undefined ? h.token : token;
  if (tok !== null) hdrs.authorization = `Bearer ${tok}`;
  if (payload !== undefined) {
    if (!Object.keys(hdrs).some((k) => k.toLowerCase() === "content-type"))
      hdrs["content-type"] = "application/json";
    hdrs["content-length"] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        method,
        path: target.pathname + target.search,
        headers: hdrs,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json;
          let jsonError;
          try {
            json = text.length ? JSON.parse(text) : undefined;
          } catch (e) {
            jsonError = e;
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json, jsonError });
        });
      },
    );
    // A server may legitimately reply (e.g. 413) and close before it has read the whole body;
    // the write error that follows is not a test failure as long as a response arrived.
    req.on("error", (err) => reject(new Error(`${method} ${urlPath}: ${err.message}`)));
    if (payload !== undefined) req.end(payload);
    else req.end();
  });
}

/** Assert a raw response is a JSON error document with the given status. */
export function assertJsonResponse(res, what) {
  assert.ok(
    res.text.length > 0,
    `${what}: expected a JSON body, got an empty body (status ${res.status})`,
  );
  assert.equal(
    res.jsonError,
    undefined,
    `${what}: body is not JSON (status ${res.status}): ${res.text.slice(0, 300)}`,
  );
  const ct = res.headers["content-type"] ?? "";
  assert.match(ct, /application\/json/, `${what}: content-type should be application/json, got "${ct}"`);
}

// ---------------------------------------------------------------------------
// SDK error helpers
// ---------------------------------------------------------------------------

/**
 * Await `promise`, expect it to reject with svix's ApiException with `code` and, when given,
 * `body.code === bodyCode`. Returns the exception.
 */
export async function expectApiError(promise, code, bodyCode, what = "request") {
  let err;
  try {
    const value = await promise;
    assert.fail(
      `${what}: expected ApiException ${code}${bodyCode ? ` (${bodyCode})` : ""}, ` +
        `but it succeeded with ${JSON.stringify(value)?.slice(0, 300)}`,
    );
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    err = e;
  }
  assert.ok(
    err instanceof ApiException,
    `${what}: expected svix ApiException ${code}, got ${err?.name}: ${err?.message} ` +
      "(a SyntaxError here means herald's error body was not JSON)",
  );
  assert.equal(
    err.code,
    code,
    `${what}: expected HTTP ${code}, got ${err.code} with body ${JSON.stringify(err.body)}`,
  );
  if (bodyCode !== undefined) {
    assert.equal(
      err.body?.code,
      bodyCode,
      `${what}: expected error body code "${bodyCode}", got body ${JSON.stringify(err.body)}`,
    );
  }
  return err;
}

/** Assert a 422 body has Svix's shape: {detail: [{loc: [...], msg, type}, ...]}. */
export function assertValidationBody(body, what) {
  assert.ok(
    body && Array.isArray(body.detail) && body.detail.length > 0,
    `${what}: 422 body should be {detail:[{loc,msg,type}]}, got ${JSON.stringify(body)}`,
  );
  for (const item of body.detail) {
    assert.ok(
      Array.isArray(item.loc),
      `${what}: detail[].loc should be an array, got ${JSON.stringify(item)}`,
    );
    assert.equal(typeof item.msg, "string", `${what}: detail[].msg should be a string: ${JSON.stringify(item)}`);
    assert.equal(typeof item.type, "string", `${what}: detail[].type should be a string: ${JSON.stringify(item)}`);
  }
}

// ---------------------------------------------------------------------------
// Polling helpers
// ---------------------------------------------------------------------------

/**
 * Call `fn` until it returns a truthy value (returned) or `timeoutMs` passes; then throws with
 * `message` and the last value/error seen.
 */
export async function eventually(fn, { timeoutMs = 5000, intervalMs = 50, message = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      lastErr = undefined;
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${message}; last ` +
          (lastErr ? `error: ${lastErr.stack ?? lastErr}` : `value: ${JSON.stringify(last)?.slice(0, 500)}`),
      );
    }
    await sleep(intervalMs);
  }
}

/**
 * Waits until no delivery of message `msgId` waits or is in flight, and returns the message's
 * `deliveries` counts ({success, pending, sending, fail}, herald's extension of the message
 * list; all 0 when no endpoint was subscribed). Nothing more is sent for the message after that,
 * so a test can check what did not arrive without sleeping.
 */
export async function settled(h, appId, msgId, { timeoutMs = 5000 } = {}) {
  return eventually(
    async () => {
      const res = await rawRequest(h, "GET", `/api/v1/app/${appId}/msg?limit=250&with_content=false`);
      assert.equal(res.status, 200, `list messages: ${res.text}`);
      const m = res.json.data.find((x) => x.id === msgId);
      assert.ok(m, `message ${msgId} is listed`);
      const d = m.deliveries ?? { success: 0, pending: 0, sending: 0, fail: 0 };
      return d.pending === 0 && d.sending === 0 ? d : null;
    },
    { timeoutMs, message: `every delivery of ${msgId} final` },
  );
}

/** Follow `iterator` through every page of a svix list call: `fetchPage(iterator)`. */
export async function collectAll(fetchPage, { maxPages = 100 } = {}) {
  const pages = [];
  let iterator;
  for (let i = 0; i < maxPages; i++) {
    const page = await fetchPage(iterator);
    pages.push(page);
    if (page.done) return pages;
    iterator = page.iterator;
    assert.ok(iterator, `page ${i} has done=false but no iterator: ${JSON.stringify(page).slice(0, 300)}`);
  }
  throw new Error(`pagination did not finish after ${maxPages} pages`);
}

// ---------------------------------------------------------------------------
// Receiver
// ---------------------------------------------------------------------------

/**
 * A loopback HTTP server recording every request.
 *
 * rx.respond(path, plan): plan is an array of steps, each a status number or
 *   {status, body, headers, delayMs}, or a function (record) => step; step i answers the i-th
 *   request on that path, the last step repeats. Default for unplanned paths: 204 with no body.
 *   Pending delays end (without a response) when the receiver is closed.
 * Each record has `time` (its body fully received) and, once answered, `answeredAt`.
 * It listens on `host` (default 127.0.0.1) at `port` (default: any free one).
 */
export async function startReceiver({ host = "127.0.0.1", port: wanted = 0 } = {}) {
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const all = [];
  const byPath = new Map();
  const plans = new Map();
  const delays = new Set(); // pending response delays: {timer, resolve}
  let closed = false;
  const delay = (ms) =>
    new Promise((resolve) => {
      const d = { resolve };
      d.timer = setTimeout(() => {
        delays.delete(d);
        resolve(true);
      }, ms);
      delays.add(d);
    });

  const open = new Map(); // path -> {now, max}: requests received and not yet answered
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const p = new URL(req.url, "http://x").pathname;
      const rawBody = Buffer.concat(chunks);
      const list = byPath.get(p) ?? [];
      byPath.set(p, list);
      const index = list.length;
      const o = open.get(p) ?? { now: 0, max: 0 };
      open.set(p, o);
      o.now++;
      o.max = Math.max(o.max, o.now);
      const record = {
        path: p,
        url: req.url,
        method: req.method,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        rawBody,
        body: rawBody.toString("utf8"),
        time: Date.now(),
        index,
      };
      res.on("close", () => {
        o.now--;
        record.answeredAt = Date.now();
      });
      list.push(record);
      all.push(record);
      events.emit("request", record);

      const plan = plans.get(p);
      let step = plan ? plan[Math.min(index, plan.length - 1)] : 204;
      if (typeof step === "function") step = await step(record);
      if (typeof step === "number") step = { status: step };
      if (step.delayMs && !(await delay(step.delayMs))) return; // receiver closed meanwhile
      if (closed || res.destroyed) return;
      const headers = { ...(step.headers ?? {}) };
      let body = step.body;
      if (body !== undefined && typeof body !== "string" && !Buffer.isBuffer(body)) {
        body = JSON.stringify(body);
        headers["content-type"] ??= "application/json";
      }
      res.writeHead(step.status, headers);
      res.end(step.status === 204 || step.status === 304 ? undefined : body);
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(wanted, host, resolve);
  });
  const port = server.address().port;
  const authority = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;

  return {
    port,
    url: (p = "/") => `http://${authority}${p}`,
    respond(p, plan) {
      plans.set(p, Array.isArray(plan) ? plan : [plan]);
    },
    requests: (p) => (p === undefined ? [...all] : [...(byPath.get(p) ?? [])]),
    /** Resolve with the first `n` requests on `p`; reject after `timeoutMs`. */
    waitFor(p, n = 1, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const list = byPath.get(p) ?? [];
          if (list.length >= n) {
            cleanup();
            resolve(list.slice(0, n));
            return true;
          }
          return false;
        };
        const onReq = (r) => {
          if (r.path === p) check();
        };
        const timer = setTimeout(() => {
          cleanup();
          const got = byPath.get(p) ?? [];
          const seenPaths = [...byPath.keys()].map((k) => `${k}×${byPath.get(k).length}`).join(", ");
          reject(
            new Error(
              `receiver: timed out after ${timeoutMs} ms waiting for ${n} request(s) on ${p}; ` +
                `got ${got.length}. Paths seen so far: ${seenPaths || "(none)"}`,
            ),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          events.off("request", onReq);
        };
        events.on("request", onReq);
        check();
      });
    },
    /** Requests whose response is still being delayed. */
    pendingDelays: () => delays.size,
    /** The most requests on `p` received and not yet answered at any one moment. */
    maxConcurrent: (p) => open.get(p)?.max ?? 0,
    async close() {
      closed = true;
      for (const d of delays) {
        clearTimeout(d.timer);
        d.resolve(false);
      }
      delays.clear();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------
// Signature verification
// ---------------------------------------------------------------------------

/** Independent HMAC over the exact received bytes (no library, no string round-trip). */
export function manualSignature(secret, id, timestamp, rawBody) {
  const key = Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64");
  const mac = crypto.createHmac("sha256", key);
  mac.update(Buffer.from(`${id}.${timestamp}.`, "utf8"));
  mac.update(rawBody);
  return mac.digest("base64");
}

/** The v1 signatures listed in a webhook-signature header. */
export function signaturesOf(req) {
  const header = req.headers["webhook-signature"] ?? "";
  return header
    .split(" ")
    .filter(Boolean)
    .map((s) => {
      const i = s.indexOf(",");
      return { version: s.slice(0, i), sig: s.slice(i + 1) };
    });
}

/** True if `secret` verifies `req` with BOTH libraries (throws if they disagree). */
export function verifiesWith(secret, req) {
  let std = true;
  let sv = true;
  try {
    new StdWebhook(secret).verify(req.rawBody, req.headers);
  } catch {
    std = false;
  }
  try {
    new SvixWebhook(secret).verify(req.body, req.headers);
  } catch {
    sv = false;
  }
  assert.equal(std, sv, `standardwebhooks (${std}) and svix Webhook (${sv}) disagree on the same delivery`);
  return std;
}

/**
 * Full check of one recorded delivery:
 *  - webhook-id / webhook-timestamp / webhook-signature present, id === msgId, timestamp fresh;
 *  - verifies with standardwebhooks AND svix's Webhook using `secret` (or every secret in an array);
 *  - one of the v1 signatures equals an independent HMAC over the exact raw bytes;
 *  - body is valid UTF-8 JSON and deep-equals `payload` (when given);
 *  - content-type is application/json.
 */
export function verifyDelivery(secret, req, { msgId, payload, what = "delivery" } = {}) {
  const h = req.headers;
  const ctx = `${what} (${req.method} ${req.path} #${req.index})`;
  assert.equal(req.method, "POST", `${ctx}: webhooks must be POSTed`);
  for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
    assert.ok(h[name], `${ctx}: missing ${name} header; headers were ${JSON.stringify(h)}`);
  }
  if (msgId !== undefined) {
    assert.equal(h["webhook-id"], msgId, `${ctx}: webhook-id must equal the message id`);
  }
  assert.match(h["webhook-timestamp"], /^\d+$/, `${ctx}: webhook-timestamp must be unix seconds`);
  const ts = Number(h["webhook-timestamp"]);
  const now = Math.floor(Date.now() / 1000);
  assert.ok(
    Math.abs(now - ts) <= 60,
    `${ctx}: webhook-timestamp ${ts} is not fresh (now ${now})`,
  );
  assert.match(
    h["content-type"] ?? "",
    /^application\/json/,
    `${ctx}: content-type should be application/json, got "${h["content-type"]}"`,
  );

  const sigs = signaturesOf(req);
  assert.ok(sigs.length >= 1, `${ctx}: webhook-signature has no entries: "${h["webhook-signature"]}"`);
  for (const s of sigs) {
    assert.equal(s.version, "v1", `${ctx}: unexpected signature version in "${h["webhook-signature"]}"`);
  }

  const secrets = Array.isArray(secret) ? secret : [secret];
  for (const sec of secrets) {
    try {
      new StdWebhook(sec).verify(req.rawBody, h);
    } catch (e) {
      assert.fail(`${ctx}: standardwebhooks verify failed: ${e.message}; header "${h["webhook-signature"]}"`);
    }
    try {
      new SvixWebhook(sec).verify(req.body, h);
    } catch (e) {
      assert.fail(`${ctx}: svix Webhook.verify failed: ${e.message}; header "${h["webhook-signature"]}"`);
    }
    const expected = manualSignature(sec, h["webhook-id"], h["webhook-timestamp"], req.rawBody);
    assert.ok(
      sigs.some((s) => s.sig === expected),
      `${ctx}: no v1 signature equals HMAC-SHA256 over the exact received bytes ` +
        `(expected v1,${expected}; header "${h["webhook-signature"]}")`,
    );
  }

  assert.ok(
    Buffer.from(req.body, "utf8").equals(req.rawBody),
    `${ctx}: body is not valid UTF-8`,
  );
  let parsed;
  try {
    parsed = JSON.parse(req.body);
  } catch (e) {
    assert.fail(`${ctx}: body is not JSON: ${e.message}: ${req.body.slice(0, 200)}`);
  }
  if (payload !== undefined) {
    assert.deepEqual(parsed, payload, `${ctx}: delivered JSON differs from the message payload`);
  }
  return parsed;
}

// ---------------------------------------------------------------------------
// Small SDK conveniences
// ---------------------------------------------------------------------------

/** Create event types if they do not exist yet (409 on an existing one is fine). */
export async function ensureEventTypes(svix, names) {
  for (const name of names) {
    try {
      await svix.eventType.create({ name, description: `conformance ${name}` });
    } catch (e) {
      if (!(e instanceof ApiException && e.code === 409)) throw e;
    }
  }
}

/** Assert `d` is a valid Date close to now. */
export function assertRecentDate(d, what, slackMs = 120_000) {
  assert.ok(d instanceof Date, `${what} should be a Date`);
  assert.ok(!Number.isNaN(d.getTime()), `${what} is an invalid date (field missing or not RFC 3339?)`);
  assert.ok(
    Math.abs(Date.now() - d.getTime()) < slackMs,
    `${what} = ${d.toISOString()} is not close to now (${new Date().toISOString()}); UTC?`,
  );
}

export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
