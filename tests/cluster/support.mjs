// Helpers shared by the cluster tests: several `herald serve` processes on one PostgreSQL
// database, started by ../conformance/harness.mjs (which also brings svix and standardwebhooks).
import { execFile } from "node:child_process";

import { onPostgres } from "../conformance/harness.mjs";

/** The reason every cluster test is skipped without PostgreSQL (false on PostgreSQL). */
export const NEEDS_POSTGRES =
  !onPostgres &&
  "the cluster tests need PostgreSQL: HERALD_TEST_STORE=postgres and HERALD_TEST_PG_URI (ctest -R cluster sets them)";

/**
 * POST one message straight to `target` (a node: {url, token}), never waiting longer than
 * `timeoutMs`. Resolves with {status, headers, text, json, startedAt, at} or, when no answer
 * came, {error, timedOut, startedAt, at}.
 */
export async function publish(target, appId, payload, { eventType = "cluster.test", timeoutMs = 5000 } = {}) {
  const startedAt = Date.now();
  try {
    const res = await fetch(`${target.url}/api/v1/app/${appId}/msg`, {
      method: "POST",
      headers: { authorization: `Bearer ${target.token}`, "content-type": "application/json" },
      body: JSON.stringify({ eventType, payload }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json, startedAt, at: Date.now() };
  } catch (error) {
    const timedOut = error.name === "TimeoutError" || error.name === "AbortError";
    return { error, timedOut, startedAt, at: Date.now() };
  }
}

/**
 * The attempts a node logged (HERALD_LOG_LEVEL=debug logs every attempt when its result is
 * recorded, so these are the attempts that node made): [{msgId, endpointId, status}].
 */
export function attemptsLogged(node) {
  const { stdout, stderr } = node.logs();
  const out = [];
  for (const m of `${stdout}\n${stderr}`.matchAll(/attempt msg=(\S+) endpoint=(\S+) status=(\d+)/g)) {
    out.push({ msgId: m[1], endpointId: m[2], status: Number(m[3]) });
  }
  return out;
}

/** Lines of a node's output logged at warning level or above. */
export function warningsLogged(node) {
  const { stdout, stderr } = node.logs();
  return `${stdout}\n${stderr}`.split("\n").filter((l) => /\[(warning|error|critical)\]/.test(l));
}

/** The nearest-rank percentile `p` (0..100) of `values`. */
export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** The most of `times` (ms, any order) that fall in one window [t, t + windowMs). */
export function maxInWindow(times, windowMs) {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < t.length; i++) {
    while (j < t.length && t[j] < t[i] + windowMs) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

/** Runs `fn(i)` for i in [0, n) with at most `limit` running at once; resolves with the results. */
export async function pooled(n, limit, fn) {
  const results = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      results[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return results;
}

/**
 * Restarts the test's PostgreSQL server with a fast shutdown (clients are cut off):
 * `$HERALD_PG_SERVER_SCRIPT restart $HERALD_TEST_PG_DIR`. Resolves with {startedAt, endedAt}.
 */
export function restartPostgres({ timeoutMs = 60_000 } = {}) {
  const script = process.env.HERALD_PG_SERVER_SCRIPT;
  const dir = process.env.HERALD_TEST_PG_DIR;
  if (!script || !dir) {
    return Promise.reject(new Error("restarting PostgreSQL needs HERALD_PG_SERVER_SCRIPT and HERALD_TEST_PG_DIR"));
  }
  const startedAt = Date.now();
  return new Promise((resolve, reject) => {
    execFile(script, ["restart", dir], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${script} restart ${dir}: ${err.message}\n${stdout}${stderr}`));
      else resolve({ startedAt, endedAt: Date.now() });
    });
  });
}
