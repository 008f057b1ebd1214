// Conformance harness: starts a real herald process and a loopback webhook receiver,
// and verifies deliveries with the official standardwebhooks library and svix's Webhook.
//
// Everything the tests do against herald goes through the official `svix` SDK, except
// the few requests the SDK refuses to make (malformed bodies, oversized bodies, missing
// auth), which go through `rawRequest` below.

import { spawn } from "node:child_process";
import crypto from "node:crypto";
import { EventEmitter } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
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
// herald process
// ---------------------------------------------------------------------------

const READY_RE = /listening on (http:\/\/127\.0\.0\.1:(\d+))/;

/**
 * Start `herald serve` on an ephemeral port with a fresh database.
 *
 * opts.retrySchedule  HERALD_RETRY_SCHEDULE (default "100ms,200ms,400ms")
 * opts.env            extra environment variables
 * opts.args           extra command-line arguments
 * opts.readyTimeoutMs how long to wait for the "listening on" line (default 10 s)
 * opts.dbPath        reuse this database file (e.g. to restart after a crash) instead of a
 *                    fresh one; its directory is removed by stop() unless stop({keepDir: true})
 * opts.token         admin token to use (default: a fresh random one)
 */
export async function startHerald(opts = {}) {
  const bin = process.env.HERALD_BIN || DEFAULT_HERALD_BIN;
  if (!existsSync(bin)) {
    throw new Error(
      `herald binary not found at ${bin} (set HERALD_BIN or build it with ` +
        "`cmake --build build --target herald` in the repository root)",
    );
  }
  const dir = opts.dbPath ? path.dirname(opts.dbPath) : mkdtempSync(path.join(tmpdir(), "herald-conf-"));
  const dbPath = opts.dbPath ?? path.join(dir, "herald.db");
  const token = opts.token ?? randomToken(40);
  const env = {
    ...process.env,
    HERALD_ADMIN_TOKEN: token,
    HERALD_RETRY_SCHEDULE: opts.retrySchedule ?? "100ms,200ms,400ms",
    HERALD_ALLOW_PRIVATE_CIDRS: "127.0.0.0/8",
    HERALD_REQUEST_TIMEOUT: "2s",
    HERALD_LOG_LEVEL: "warn",
    ...(opts.env ?? {}),
  };
  const args = ["serve", "--listen", "127.0.0.1:0", "--db", dbPath, ...(opts.args ?? [])];
  const proc = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });

  let stdout = "";
  let stderr = "";
  const MAX_LOG = 256 * 1024;
  const keep = (s, chunk) => {
    s += chunk.toString("utf8");
    return s.length > MAX_LOG ? s.slice(s.length - MAX_LOG) : s;
  };

  let exited = null; // {code, signal}
  const exitPromise = new Promise((resolve) => {
    proc.on("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });

  const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
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
      `\n--- herald stdout ---\n${stdout}\n--- herald stderr ---\n${stderr}\n---`;
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      finish(
        new Error(
          `herald did not print "listening on http://127.0.0.1:<port>" on stdout within ` +
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
      // record where it came from (health.test.mjs asserts it was stdout).
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
          `herald exited (code ${code}, signal ${signal}) before becoming ready${describe()}`,
        ),
      ),
    );
  });

  const svix = instrumentSvix(new Svix(token, { serverUrl: url }));

  async function stop({ timeoutMs = 5000, keepDir = false } = {}) {
    if (!exited) {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
      await exitPromise;
      clearTimeout(t);
    }
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
    return exited;
  }

  return {
    url,
    token,
    svix,
    proc,
    dbPath,
    dir,
    stop,
    listenStream,
    exitPromise,
    logs: () => ({ stdout, stderr }),
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
 */
export async function startReceiver() {
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

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const p = new URL(req.url, "http://x").pathname;
      const rawBody = Buffer.concat(chunks);
      const list = byPath.get(p) ?? [];
      byPath.set(p, list);
      const index = list.length;
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
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = server.address().port;

  return {
    port,
    url: (p = "/") => `http://127.0.0.1:${port}${p}`,
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
