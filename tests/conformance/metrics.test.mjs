// GET /metrics: the Prometheus text exposition (format 0.0.4), served without a token.
// Every figure is checked after real deliveries to a loopback receiver, and cross-checked
// against the attempts the svix SDK lists.
//
// With several herald nodes on one PostgreSQL database every node is scraped, as Prometheus
// would scrape each instance: the counters, the histogram and the in-flight gauge are that
// process's own, so the cluster's figure is their sum; pending and the queue lag describe the
// shared queue, so every node must report the cluster's value.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";

import {
  collectAll,
  ensureEventTypes,
  eventually,
  onPostgres,
  rawRequest,
  startHerald,
  startReceiver,
  uniq,
} from "./harness.mjs";

// One retry 50 ms (±20%) after a failed first try: a failing delivery makes exactly 2 attempts.
const RETRY_SCHEDULE = "50ms";
const ATTEMPTS_PER_FAILING_DELIVERY = 2;
// At most 2 attempts in progress to one endpoint, so a hanging endpoint leaves deliveries parked.
const ENDPOINT_CONCURRENCY = 2;
const REQUEST_TIMEOUT_MS = 2000; // the harness's HERALD_REQUEST_TIMEOUT=2s

const COUNTERS = [
  ["herald_messages_accepted_total", {}],
  ["herald_attempts_total", { outcome: "success" }],
  ["herald_attempts_total", { outcome: "http_error" }],
  ["herald_attempts_total", { outcome: "network_error" }],
];
const GAUGES = ["herald_deliveries_pending", "herald_deliveries_in_flight", "herald_queue_lag_seconds"];
const HISTOGRAM = "herald_attempt_duration_seconds";

// ---------------------------------------------------------------------------
// Exposition parser
// ---------------------------------------------------------------------------

function parseValue(s, ctx) {
  if (s === "+Inf" || s === "Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (s === "NaN") return NaN;
  assert.match(s, /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/, `${ctx}: "${s}" is not a number`);
  return Number(s);
}

/** Parses `{a="x",b="y"}`; returns the labels object. */
function parseLabels(s, ctx) {
  const labels = {};
  let i = 0;
  while (i < s.length) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(s.slice(i));
    assert.ok(m, `${ctx}: bad label set {${s}} at offset ${i}`);
    i += m[0].length;
    let v = "";
    for (;;) {
      assert.ok(i < s.length, `${ctx}: unterminated label value in {${s}}`);
      const c = s[i++];
      if (c === '"') break;
      if (c === "\\") {
        const e = s[i++];
        v += e === "n" ? "\n" : e;
      } else v += c;
    }
    assert.ok(!(m[1] in labels), `${ctx}: label ${m[1]} appears twice`);
    labels[m[1]] = v;
    if (s[i] === ",") i++;
    else assert.equal(i, s.length, `${ctx}: expected "," or "}" after label ${m[1]} in {${s}}`);
  }
  return labels;
}

/** The family a sample belongs to, given the declared types (histogram suffixes fold in). */
function familyOf(name, types) {
  if (types.has(name)) return name;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      if (types.get(base) === "histogram" || types.get(base) === "summary") return base;
    }
  }
  return undefined;
}

/**
 * Parses a text exposition, checking its structure: every sample's metric has a # TYPE line
 * that comes before it, every # TYPE is counter/gauge/histogram and appears once, no series
 * appears twice. Returns {types, help, samples: [{name, labels, value}]}.
 */
function parseExposition(text) {
  assert.ok(text.endsWith("\n"), "the exposition must end with a line feed");
  const types = new Map();
  const help = new Map();
  const samples = [];
  const seen = new Set();
  const lines = text.split("\n");
  lines.pop(); // after the final \n
  lines.forEach((line, n) => {
    const ctx = `/metrics line ${n + 1} "${line}"`;
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      const m = /^#\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m;
      if (kind === "TYPE") {
        assert.ok(!types.has(name), `${ctx}: a second # TYPE for ${name}`);
        assert.ok(
          ["counter", "gauge", "histogram"].includes(rest),
          `${ctx}: # TYPE of ${name} is "${rest}", expected counter, gauge or histogram`,
        );
        assert.ok(
          !samples.some((s) => familyOf(s.name, new Map([[name, rest]])) === name),
          `${ctx}: # TYPE ${name} comes after a sample of it`,
        );
        types.set(name, rest);
      } else {
        assert.ok(!help.has(name), `${ctx}: a second # HELP for ${name}`);
        assert.ok(rest.length > 0, `${ctx}: empty # HELP`);
        help.set(name, rest);
      }
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?$/.exec(line);
    assert.ok(m, `${ctx}: not a sample line (name{labels} value)`);
    const [, name, labelText, valueText] = m;
    const labels = labelText === undefined ? {} : parseLabels(labelText, ctx);
    const value = parseValue(valueText, ctx);
    const family = familyOf(name, types);
    assert.ok(family, `${ctx}: sample of ${name} has no # TYPE line before it`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    assert.ok(!seen.has(key), `${ctx}: the series ${name}${JSON.stringify(labels)} appears twice`);
    seen.add(key);
    samples.push({ name, labels, value, family });
  });
  return { types, help, samples };
}

const sameLabels = (a, b) =>
  Object.keys(a).length === Object.keys(b).length && Object.keys(a).every((k) => a[k] === b[k]);

/** The value of one series; fails when it is missing. */
function valueOf(m, name, labels = {}) {
  const s = m.samples.find((x) => x.name === name && sameLabels(x.labels, labels));
  assert.ok(
    s,
    `/metrics has no series ${name}${Object.keys(labels).length ? JSON.stringify(labels) : ""}; ` +
      `series present: ${m.samples.map((x) => x.name + JSON.stringify(x.labels)).join(", ")}`,
  );
  return s.value;
}

/** The histogram's buckets in exposition order, with `le` parsed; plus sum and count. */
function histogramOf(m, name = HISTOGRAM) {
  const buckets = m.samples
    .filter((s) => s.name === `${name}_bucket`)
    .map((s) => {
      assert.deepEqual(Object.keys(s.labels), ["le"], `${name}_bucket must have exactly one label, le: ${JSON.stringify(s.labels)}`);
      return { le: parseValue(s.labels.le, `${name}_bucket le="${s.labels.le}"`), leText: s.labels.le, value: s.value };
    });
  return { buckets, sum: valueOf(m, `${name}_sum`), count: valueOf(m, `${name}_count`) };
}

/** A condensed view of every figure, for deltas and messages. */
function figures(m) {
  const h = histogramOf(m);
  return {
    accepted: valueOf(m, "herald_messages_accepted_total"),
    success: valueOf(m, "herald_attempts_total", { outcome: "success" }),
    httpError: valueOf(m, "herald_attempts_total", { outcome: "http_error" }),
    networkError: valueOf(m, "herald_attempts_total", { outcome: "network_error" }),
    pending: valueOf(m, "herald_deliveries_pending"),
    inFlight: valueOf(m, "herald_deliveries_in_flight"),
    lag: valueOf(m, "herald_queue_lag_seconds"),
    count: h.count,
    sum: h.sum,
    // keyed by the bound as a number ("0.001", "2.5", "+Inf"), whatever its spelling
    buckets: Object.fromEntries(h.buckets.map((b) => [b.le === Infinity ? "+Inf" : String(b.le), b.value])),
  };
}

const show = (f) =>
  JSON.stringify({
    ...f,
    buckets: undefined,
    perNode: f.perNode?.map((n) => ({ ...n, buckets: undefined })),
  });

/**
 * The figures of a cluster from each node's: counters, histogram and in-flight summed; pending
 * and the lag, figures of the shared queue, as the node that reports the most (so a check that
 * they reached a value holds for every node). `perNode` keeps each node's.
 */
function combine(perNode) {
  const total = (k) => perNode.reduce((s, f) => s + f[k], 0);
  const out = { perNode };
  for (const k of ["accepted", "success", "httpError", "networkError", "count", "sum", "inFlight"]) out[k] = total(k);
  out.sum = Math.round(out.sum * 1000) / 1000;
  out.pending = Math.max(...perNode.map((f) => f.pending));
  out.lag = Math.max(...perNode.map((f) => f.lag));
  out.buckets = {};
  for (const f of perNode) for (const [le, v] of Object.entries(f.buckets)) out.buckets[le] = (out.buckets[le] ?? 0) + v;
  return out;
}

/** Structural checks every scrape must pass: all series present, histogram well formed. */
function checkShape(m) {
  for (const [name, labels] of COUNTERS) {
    const family = name;
    assert.equal(m.types.get(family), "counter", `# TYPE ${family} should be counter`);
    assert.ok(m.help.has(family), `# HELP ${family} is missing`);
    const v = valueOf(m, name, labels);
    assert.ok(Number.isInteger(v) && v >= 0, `${name}${JSON.stringify(labels)} = ${v}: a count`);
  }
  assert.deepEqual(
    m.samples.filter((s) => s.name === "herald_attempts_total").map((s) => s.labels.outcome).sort(),
    ["http_error", "network_error", "success"],
    "herald_attempts_total has exactly the outcomes success, http_error, network_error",
  );
  for (const name of GAUGES) {
    assert.equal(m.types.get(name), "gauge", `# TYPE ${name} should be gauge`);
    assert.ok(m.help.has(name), `# HELP ${name} is missing`);
    const v = valueOf(m, name);
    assert.ok(Number.isFinite(v) && v >= 0, `${name} = ${v}: finite and not negative`);
  }
  assert.ok(Number.isInteger(valueOf(m, "herald_deliveries_pending")), "pending is a count");
  assert.ok(Number.isInteger(valueOf(m, "herald_deliveries_in_flight")), "in flight is a count");

  assert.equal(m.types.get(HISTOGRAM), "histogram", `# TYPE ${HISTOGRAM} should be histogram`);
  assert.ok(m.help.has(HISTOGRAM), `# HELP ${HISTOGRAM} is missing`);
  const h = histogramOf(m);
  assert.ok(h.buckets.length >= 2, `${HISTOGRAM} needs buckets, got ${h.buckets.length}`);
  const last = h.buckets[h.buckets.length - 1];
  assert.equal(last.leText, "+Inf", `the last bucket must be le="+Inf", got le="${last.leText}"`);
  assert.equal(h.buckets.filter((b) => b.le === Infinity).length, 1, "exactly one +Inf bucket");
  for (let i = 1; i < h.buckets.length; i++) {
    const [a, b] = [h.buckets[i - 1], h.buckets[i]];
    assert.ok(a.le < b.le, `bucket bounds must ascend: le="${a.leText}" then le="${b.leText}"`);
    assert.ok(
      a.value <= b.value,
      `buckets must be cumulative: le="${a.leText}" ${a.value} > le="${b.leText}" ${b.value}`,
    );
  }
  for (const b of h.buckets) {
    assert.ok(Number.isInteger(b.value) && b.value >= 0, `bucket le="${b.leText}" = ${b.value}: a count`);
    if (b.le !== Infinity) assert.ok(b.le > 0, `bucket bound le="${b.leText}" should be positive seconds`);
  }
  assert.equal(last.value, h.count, `le="+Inf" bucket (${last.value}) must equal ${HISTOGRAM}_count (${h.count})`);
  assert.ok(Number.isFinite(h.sum) && h.sum >= 0, `${HISTOGRAM}_sum = ${h.sum}`);
  if (h.count === 0) assert.equal(h.sum, 0, "no observations: the sum is 0");
}

// ---------------------------------------------------------------------------
// Scraping
// ---------------------------------------------------------------------------

/** GET /metrics without Authorization; returns the raw response. */
function getMetrics(herald) {
  return rawRequest(herald, "GET", "/metrics", {
    token: null,
    headers: { accept: "text/plain;version=0.0.4;q=1,*/*;q=0.1" },
  });
}

/** Scrape, check the response and the structure; returns the parsed exposition. */
async function scrape(herald) {
  const res = await getMetrics(herald);
  assert.equal(res.status, 200, `GET /metrics (no token): expected 200, got ${res.status} ${res.text.slice(0, 300)}`);
  assert.match(
    res.headers["content-type"] ?? "",
    /^text\/plain; ?version=0\.0\.4/,
    `GET /metrics: Content-Type should start with "text/plain; version=0.0.4", got "${res.headers["content-type"]}"`,
  );
  const m = parseExposition(res.text);
  checkShape(m);
  return m;
}

/** The targets to scrape: each node of a cluster (each has its own url), else the herald. */
const scrapeTargets = (herald) => (herald.nodes?.length > 1 ? herald.nodes : [herald]);

/** Every node's figures, combined when there are several (see combine). */
async function scrapeFigures(herald) {
  const perNode = [];
  for (const target of scrapeTargets(herald)) perNode.push(figures(await scrape(target)));
  return perNode.length === 1 ? perNode[0] : combine(perNode);
}

/** Subtracts the counters (and the histogram) of `a` from `b`. */
function delta(a, b) {
  const d = {};
  for (const k of ["accepted", "success", "httpError", "networkError", "count", "sum"]) d[k] = b[k] - a[k];
  d.buckets = Object.fromEntries(Object.keys(b.buckets).map((k) => [k, b.buckets[k] - (a.buckets[k] ?? 0)]));
  return d;
}

/** Every attempt the API lists for an endpoint, through every page. */
async function attemptsOf(svix, appId, endpointId) {
  const pages = await collectAll((iterator) =>
    svix.messageAttempt.listByEndpoint(appId, endpointId, { iterator, limit: 100 }),
  );
  return pages.flatMap((p) => p.data);
}

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/**
 * A TCP server that accepts connections and never answers. `failFast()` makes it destroy
 * every open connection and each new one at once (so later attempts end quickly).
 */
async function startBlackHole() {
  const sockets = new Set();
  let connections = 0;
  let fast = false;
  const server = net.createServer((sock) => {
    connections++;
    sock.on("error", () => {});
    if (fast) {
      sock.destroy();
      return;
    }
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.resume(); // read and drop the request
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: (p = "/") => `http://127.0.0.1:${port}${p}`,
    connections: () => connections,
    open: () => sockets.size,
    failFast() {
      fast = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    async close() {
      fast = true;
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

let h;
let rx;
let svix;

before(async () => {
  h = await startHerald({
    retrySchedule: RETRY_SCHEDULE,
    env: { HERALD_ENDPOINT_CONCURRENCY: String(ENDPOINT_CONCURRENCY) },
  });
  svix = h.svix;
  rx = await startReceiver();
  await ensureEventTypes(svix, ["metrics.ping"]);
});

after(async () => {
  await h?.stop();
  await rx?.close();
});

/**
 * Polls /metrics until every delivery is settled (nothing pending or in flight) and the
 * counters have reached at least `want` (deltas from `base`); returns the last figures.
 */
async function settled(base, want, message) {
  let last;
  await eventually(
    async () => {
      last = await scrapeFigures(h);
      const d = delta(base, last);
      return (
        last.pending === 0 &&
        last.inFlight === 0 &&
        Object.entries(want).every(([k, v]) => d[k] >= v)
      );
    },
    { timeoutMs: 10_000, intervalMs: 50, message: `${message} (want deltas ${JSON.stringify(want)})` },
  ).catch((e) => {
    e.message += `\nlast /metrics figures: ${last && show(last)}; deltas ${last && JSON.stringify(delta(base, last))}`;
    throw e;
  });
  return last;
}

/** The checks of a fresh herald's exposition, on one node. */
async function checkFresh(fresh) {
  const res = await getMetrics(fresh);
  assert.equal(res.status, 200, `GET /metrics without Authorization: expected 200, got ${res.status} ${res.text.slice(0, 300)}`);
  assert.match(
    res.headers["content-type"] ?? "",
    /^text\/plain; version=0\.0\.4/,
    `Content-Type should start with "text/plain; version=0.0.4", got "${res.headers["content-type"]}"`,
  );
  const m = parseExposition(res.text);
  checkShape(m);

  // Every family has its # HELP and # TYPE, and nothing else is typed oddly.
  for (const name of ["herald_messages_accepted_total", "herald_attempts_total", ...GAUGES, HISTOGRAM]) {
    assert.ok(m.types.has(name), `# TYPE ${name} missing`);
    assert.ok(m.help.has(name), `# HELP ${name} missing`);
  }
  for (const s of m.samples) assert.ok(m.types.has(s.family), `sample ${s.name} has no # TYPE`);

  const f = figures(m);
  assert.equal(f.accepted, 0, "herald_messages_accepted_total on a fresh herald");
  assert.equal(f.success, 0, 'herald_attempts_total{outcome="success"} on a fresh herald');
  assert.equal(f.httpError, 0, 'herald_attempts_total{outcome="http_error"} on a fresh herald');
  assert.equal(f.networkError, 0, 'herald_attempts_total{outcome="network_error"} on a fresh herald');
  assert.equal(f.pending, 0, "herald_deliveries_pending on a fresh herald");
  assert.equal(f.inFlight, 0, "herald_deliveries_in_flight on a fresh herald");
  assert.equal(f.lag, 0, "herald_queue_lag_seconds on a fresh herald");
  assert.equal(f.count, 0, `${HISTOGRAM}_count on a fresh herald`);
  assert.equal(f.sum, 0, `${HISTOGRAM}_sum on a fresh herald`);
  for (const [le, v] of Object.entries(f.buckets)) assert.equal(v, 0, `bucket le="${le}" on a fresh herald`);

  // SQLite lives in herald's process, so its memory is herald's, bounded by a setting; a
  // PostgreSQL store's is the server's, and no such series is shown.
  const sqliteMemory = m.samples.filter((s) => s.name === "herald_sqlite_memory_bytes");
  if (onPostgres) {
    assert.equal(sqliteMemory.length, 0, "herald_sqlite_memory_bytes on PostgreSQL");
  } else {
    assert.equal(m.types.get("herald_sqlite_memory_bytes"), "gauge", "# TYPE herald_sqlite_memory_bytes");
    assert.equal(sqliteMemory.length, 1, "one herald_sqlite_memory_bytes sample");
    assert.ok(
      sqliteMemory[0].value > 0 && sqliteMemory[0].value < 32 * 1024 * 1024,
      `herald_sqlite_memory_bytes = ${sqliteMemory[0].value}: above 0, under the 32 MiB default bound`,
    );
  }

  // The C allocator's heap (herald is built against glibc here): in use, and free but held.
  assert.equal(m.types.get("herald_heap_bytes"), "gauge", "# TYPE herald_heap_bytes");
  const heap = Object.fromEntries(
    m.samples.filter((s) => s.name === "herald_heap_bytes").map((s) => [s.labels.state, s.value]),
  );
  assert.deepEqual(Object.keys(heap).sort(), ["free", "in_use"], "herald_heap_bytes by state");
  assert.ok(heap.in_use > 0 && heap.free >= 0, `herald_heap_bytes: ${JSON.stringify(heap)}`);

  // The exposition is public: a wrong token does not turn it into a 401 either.
  const wrong = await rawRequest(fresh, "GET", "/metrics", { token: "not-a-valid-token-at-all-0000" });
  assert.equal(wrong.status, 200, `GET /metrics with an unknown token: expected 200, got ${wrong.status}`);
}

describe("GET /metrics on a fresh herald", () => {
  test("200 without a token, text format 0.0.4, every series present, all zero", async () => {
    const fresh = await startHerald();
    try {
      for (const target of scrapeTargets(fresh)) await checkFresh(target);
    } finally {
      await fresh.stop();
    }
  });
});

describe("GET /metrics after deliveries", () => {
  test("200s and 500s: accepted, success, http_error, histogram and gauges match the API", async () => {
    const N = 5;
    const base = await scrapeFigures(h);
    const app = await svix.application.create({ name: "metrics-deliveries", uid: uniq("app") });
    const p = `/${uniq("metrics")}`;
    rx.respond(`${p}/ok`, [200]);
    rx.respond(`${p}/bad`, [{ status: 500, body: "broken" }]);
    const ok = await svix.endpoint.create(app.id, { url: rx.url(`${p}/ok`) });
    const bad = await svix.endpoint.create(app.id, { url: rx.url(`${p}/bad`) });
    for (let i = 0; i < N; i++) {
      await svix.message.create(app.id, { eventType: "metrics.ping", payload: { i } });
    }

    const want = { accepted: N, success: N, httpError: ATTEMPTS_PER_FAILING_DELIVERY * N };
    const end = await settled(base, want, "every attempt to the 200 and 500 endpoints recorded");
    const d = delta(base, end);
    const ctx = `after ${N} messages to a 200 and a 500 endpoint: deltas ${JSON.stringify(d)}`;
    assert.equal(d.accepted, N, `herald_messages_accepted_total; ${ctx}`);
    assert.equal(d.success, N, `herald_attempts_total{outcome="success"}; ${ctx}`);
    assert.equal(d.httpError, ATTEMPTS_PER_FAILING_DELIVERY * N, `herald_attempts_total{outcome="http_error"} (first try + 1 retry each); ${ctx}`);
    assert.equal(d.networkError, 0, `herald_attempts_total{outcome="network_error"}; ${ctx}`);
    assert.equal(d.count, d.success + d.httpError + d.networkError, `${HISTOGRAM}_count counts every attempt; ${ctx}`);
    assert.ok(d.sum >= 0, `${HISTOGRAM}_sum must not decrease; ${ctx}`);
    assert.equal(d.buckets["+Inf"], d.count, `le="+Inf" grew by the attempt count; ${ctx}`);
    assert.equal(end.pending, 0, "herald_deliveries_pending once all settled");
    assert.equal(end.inFlight, 0, "herald_deliveries_in_flight once all settled");
    assert.equal(end.lag, 0, "herald_queue_lag_seconds with nothing due");

    // The receiver saw the same attempts.
    assert.equal(rx.requests(`${p}/ok`).length, N, "requests the 200 endpoint received");
    assert.equal(rx.requests(`${p}/bad`).length, ATTEMPTS_PER_FAILING_DELIVERY * N, "requests the 500 endpoint received");

    // The API lists the same attempts the counters count.
    const okAttempts = await attemptsOf(svix, app.id, ok.id);
    const badAttempts = await attemptsOf(svix, app.id, bad.id);
    assert.equal(okAttempts.length, d.success, "attempts listed for the 200 endpoint = success counter delta");
    assert.ok(okAttempts.every((a) => a.status === 0 && a.responseStatusCode === 200), "200 endpoint: all successes");
    assert.equal(badAttempts.length, d.httpError, "attempts listed for the 500 endpoint = http_error counter delta");
    assert.ok(badAttempts.every((a) => a.status === 2 && a.responseStatusCode === 500), "500 endpoint: all failures with 500");

    // Attempt durations: the histogram sum matches the recorded durations (ms → s, ±1 ms each).
    const totalMs = [...okAttempts, ...badAttempts].reduce((s, a) => s + a.responseDurationMs, 0);
    assert.ok(
      Math.abs(d.sum - totalMs / 1000) <= 0.001 * d.count + 0.002,
      `${HISTOGRAM}_sum grew by ${d.sum} s; the listed attempts took ${totalMs} ms in all`,
    );

    // Nothing changes once settled: a second scrape has the same counters.
    const again = await scrapeFigures(h);
    assert.deepEqual(delta(end, again), { accepted: 0, success: 0, httpError: 0, networkError: 0, count: 0, sum: 0, buckets: Object.fromEntries(Object.keys(end.buckets).map((k) => [k, 0])) }, "counters are stable once everything settled");
  });

  test("a message with no endpoint is accepted but makes no attempt", async () => {
    const base = await scrapeFigures(h);
    const app = await svix.application.create({ name: "metrics-no-endpoint" });
    await svix.message.create(app.id, { eventType: "metrics.ping", payload: { lonely: true } });
    const end = await settled(base, { accepted: 1 }, "the message counted as accepted");
    const d = delta(base, end);
    assert.equal(d.accepted, 1, "herald_messages_accepted_total counts the message");
    assert.equal(d.count, 0, "no attempt was made, so the histogram did not move");
    assert.equal(d.success + d.httpError + d.networkError, 0, "no attempt counted");
  });

  test("a refused connection is a network_error, never a success", async () => {
    const N = 2;
    const port = await closedPort();
    const base = await scrapeFigures(h);
    const app = await svix.application.create({ name: "metrics-refused" });
    const ep = await svix.endpoint.create(app.id, { url: `http://127.0.0.1:${port}/closed` });
    for (let i = 0; i < N; i++) {
      await svix.message.create(app.id, { eventType: "metrics.ping", payload: { i } });
    }
    const want = { accepted: N, networkError: ATTEMPTS_PER_FAILING_DELIVERY * N };
    const end = await settled(base, want, "attempts to a closed port recorded");
    const d = delta(base, end);
    const ctx = `after ${N} messages to a closed port: deltas ${JSON.stringify(d)}`;
    assert.equal(d.networkError, ATTEMPTS_PER_FAILING_DELIVERY * N, `network_error counts every refused attempt; ${ctx}`);
    assert.equal(d.success, 0, `success must not move; ${ctx}`);
    assert.equal(d.httpError, 0, `http_error must not move (no HTTP status was received); ${ctx}`);
    assert.equal(d.count, d.networkError, `the histogram observes each attempt; ${ctx}`);
    assert.equal(end.pending, 0);
    assert.equal(end.inFlight, 0);
    assert.equal(end.lag, 0);

    const attempts = await attemptsOf(svix, app.id, ep.id);
    assert.equal(attempts.length, d.networkError, "attempts listed for the closed port = network_error delta");
    assert.ok(
      attempts.every((a) => a.status === 2 && a.responseStatusCode === 0),
      `every refused attempt is a failure with status code 0: ${JSON.stringify(attempts.map((a) => [a.status, a.responseStatusCode]))}`,
    );
  });

  test("a hanging endpoint: in flight, parked as pending with a queue lag, then network_error on timeout", async () => {
    const M = ENDPOINT_CONCURRENCY + 1; // 2 in flight, 1 parked behind them
    const hole = await startBlackHole();
    try {
      const base = await scrapeFigures(h);
      const app = await svix.application.create({ name: "metrics-hanging" });
      const ep = await svix.endpoint.create(app.id, { url: hole.url("/never") });
      const t0 = Date.now();
      for (let i = 0; i < M; i++) {
        await svix.message.create(app.id, { eventType: "metrics.ping", payload: { i } });
      }

      // While the first tries hang: 2 in flight (the endpoint's cap), 1 waiting, and the
      // waiting one has been due for a while, so the lag grows (in seconds).
      let hanging;
      await eventually(
        async () => {
          hanging = await scrapeFigures(h);
          // pending and the lag are the shared queue's: each node of a cluster reports them.
          return (
            hanging.inFlight === ENDPOINT_CONCURRENCY &&
            (hanging.perNode ?? [hanging]).every((f) => f.pending === M - ENDPOINT_CONCURRENCY && f.lag >= 0.3)
          );
        },
        {
          timeoutMs: REQUEST_TIMEOUT_MS - 500,
          intervalMs: 50,
          message:
            `in_flight=${ENDPOINT_CONCURRENCY} (summed over the nodes), pending=${M - ENDPOINT_CONCURRENCY} ` +
            "and lag>=0.3 (on every node) while the endpoint hangs",
        },
      ).catch((e) => {
        e.message += `\nlast figures: ${hanging && show(hanging)}; connections ${hole.connections()}`;
        throw e;
      });
      const elapsedS = (Date.now() - t0) / 1000;
      assert.ok(
        hanging.lag <= elapsedS + 0.05,
        `herald_queue_lag_seconds = ${hanging.lag} but the messages were published ${elapsedS} s ago (seconds, not ms?)`,
      );
      assert.equal(delta(base, hanging).networkError, 0, "nothing has timed out yet");
      assert.equal(delta(base, hanging).count, 0, "no attempt recorded while they hang");
      assert.equal(hole.open(), ENDPOINT_CONCURRENCY, "the endpoint holds exactly the in-flight connections");

      // The two hanging tries time out after HERALD_REQUEST_TIMEOUT: network errors of ~2 s.
      let timedOut;
      await eventually(
        async () => {
          timedOut = await scrapeFigures(h);
          return delta(base, timedOut).networkError >= ENDPOINT_CONCURRENCY;
        },
        { timeoutMs: REQUEST_TIMEOUT_MS + 2000, intervalMs: 50, message: "the hanging attempts time out" },
      );
      const dt = delta(base, timedOut);
      assert.equal(dt.networkError, ENDPOINT_CONCURRENCY, `the timed-out tries are network errors: ${JSON.stringify(dt)}`);
      assert.equal(dt.success + dt.httpError, 0, `a timeout is neither a success nor an HTTP error: ${JSON.stringify(dt)}`);
      assert.equal(dt.count, ENDPOINT_CONCURRENCY, "the histogram observed the timed-out tries");
      for (const [le, grew] of Object.entries(dt.buckets)) {
        const bound = le === "+Inf" ? Infinity : Number(le);
        if (bound < 1.5) assert.equal(grew, 0, `bucket le="${le}" grew by ${grew}, but the tries lasted ~2 s: ${JSON.stringify(dt.buckets)}`);
        if (bound >= 2.2) assert.equal(grew, ENDPOINT_CONCURRENCY, `bucket le="${le}" must hold the ~2 s tries: ${JSON.stringify(dt.buckets)}`);
      }
      assert.ok(Object.keys(dt.buckets).some((le) => Number(le) < 1.5), "the histogram has a bucket under 1.5 s");
      assert.ok(
        dt.sum >= 1.5 * ENDPOINT_CONCURRENCY && dt.sum <= 2.6 * ENDPOINT_CONCURRENCY,
        `${HISTOGRAM}_sum grew by ${dt.sum} s for ${ENDPOINT_CONCURRENCY} tries timed out at 2 s`,
      );

      // Make the rest fail at once (connection closed), and let everything settle.
      hole.failFast();
      const want = { accepted: M, networkError: ATTEMPTS_PER_FAILING_DELIVERY * M };
      const end = await settled(base, want, "every attempt to the hanging endpoint recorded");
      const d = delta(base, end);
      const ctx = `deltas ${JSON.stringify(d)}`;
      assert.equal(d.accepted, M, `accepted; ${ctx}`);
      assert.equal(d.networkError, ATTEMPTS_PER_FAILING_DELIVERY * M, `network_error; ${ctx}`);
      assert.equal(d.success, 0, `success must not move; ${ctx}`);
      assert.equal(d.httpError, 0, `http_error must not move; ${ctx}`);
      assert.equal(d.count, d.networkError, `histogram count; ${ctx}`);
      assert.equal(end.pending, 0, "pending once settled");
      assert.equal(end.inFlight, 0, "in flight once settled");
      assert.equal(end.lag, 0, "queue lag once settled");

      const attempts = await attemptsOf(svix, app.id, ep.id);
      assert.equal(attempts.length, d.networkError, "attempts listed for the hanging endpoint = network_error delta");
      assert.ok(attempts.every((a) => a.status === 2 && a.responseStatusCode === 0), "all failures with status code 0");
      assert.equal(
        attempts.filter((a) => a.responseDurationMs >= 1500).length,
        ENDPOINT_CONCURRENCY,
        `exactly the first ${ENDPOINT_CONCURRENCY} tries timed out: ${JSON.stringify(attempts.map((a) => a.responseDurationMs))}`,
      );
    } finally {
      await hole.close();
    }
  });
});

describe("bad requests to /metrics", () => {
  test("POST/PUT/DELETE /metrics are refused and change nothing", async () => {
    // Whatever an earlier test left in flight settles first, so that only these requests count.
    const before = await settled(await scrapeFigures(h), {}, "nothing pending or in flight");
    for (const [method, body] of [["POST", undefined], ["POST", "herald_messages_accepted_total 99\n"], ["PUT", {}], ["DELETE", undefined]]) {
      for (const token of [null, undefined]) {
        const res = await rawRequest(h, method, "/metrics", {
          token,
          body,
          headers: typeof body === "string" ? { "content-type": "text/plain" } : {},
        });
        const what = `${method} /metrics (${token === null ? "no token" : "admin token"}${body === undefined ? "" : ", with a body"})`;
        assert.ok(res.status >= 400 && res.status < 500, `${what}: expected a 4xx, got ${res.status} ${res.text.slice(0, 200)}`);
        assert.ok(!/^herald_/m.test(res.text), `${what}: must not serve the exposition: ${res.text.slice(0, 200)}`);
        assert.ok(res.json !== undefined && !res.jsonError, `${what}: the error is JSON like herald's other errors: ${res.text.slice(0, 200)}`);
      }
    }
    const after = await scrapeFigures(h);
    assert.deepEqual(
      delta(before, after),
      delta(before, before),
      `refused requests changed the counters: before ${show(before)}, after ${show(after)}`,
    );
    assert.equal(after.pending, 0);
    assert.equal(after.inFlight, 0);
  });
});
