// herald's benchmark: measures, on the machine it runs on, wrk's raw POST ceiling against an
// nginx receiver answering 204, and herald end to end against that same receiver in the same
// run (see bench/README.md). Writes bench/RESULTS.md (or --out) and a latency chart beside it.
//
//   node bench/run.mjs [--smoke] [--out FILE] [--duration S] [--repeats N] [--endpoints N]
//                      [--connections N,N,...] [--rate N] [--backlog N] [--no-profile]
//
// Sustained throughput: herald runs against publishers of each --connections count; a run
// is sustained when herald kept up (less than a second's worth of deliveries pending at its
// end), and the figure is the best sustained delivery rate.
//
// Uses only Node's standard library. Every process it starts listens on 127.0.0.1 only and is
// stopped before it exits. Exits non-zero when a scenario delivered nothing or failed.
import { spawn, spawnSync, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BUILD = path.resolve(ROOT, process.env.HERALD_BUILD_DIR || "build");
const HERALD = process.env.HERALD_BIN || path.join(BUILD, "herald");
const LOADGEN = path.join(BUILD, "bench", "herald_loadgen");
const SEED = path.join(BUILD, "bench", "herald_seed");
const TOKEN = "bench_admin_token_0123456789";

// ---------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = {
    smoke: false,
    out: null,
    duration: 20,
    repeats: 3,
    endpoints: 10,
    connections: [8, 16, 32, 64],
    rate: 1000,
    backlog: 1_000_000,
    profile: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--smoke") o.smoke = true;
    else if (a === "--no-profile") o.profile = false;
    else if (a === "--out") o.out = next();
    else if (a === "--duration") o.duration = Number(next());
    else if (a === "--repeats") o.repeats = Number(next());
    else if (a === "--endpoints") o.endpoints = Number(next());
    else if (a === "--connections") o.connections = next().split(",").map(Number);
    else if (a === "--rate") o.rate = Number(next());
    else if (a === "--backlog") o.backlog = Number(next());
    else throw new Error(`unknown argument ${a}`);
  }
  if (o.smoke) {
    Object.assign(o, { duration: 2, repeats: 1, connections: [8], rate: 100, backlog: 5000, profile: false });
  }
  for (const k of ["duration", "repeats", "endpoints", "rate", "backlog"]) {
    if (!Number.isFinite(o[k]) || o[k] <= 0) throw new Error(`--${k} must be a positive number`);
  }
  if (!o.connections.length || o.connections.some((c) => !Number.isInteger(c) || c <= 0)) {
    throw new Error("--connections must be positive integers, comma-separated");
  }
  if (o.endpoints < 2) throw new Error("--endpoints must be at least 2 (one may be a dead one)");
  o.out = o.out ?? path.join(ROOT, o.smoke ? "bench/out/smoke/RESULTS.md" : "bench/RESULTS.md");
  return o;
}

// ---------------------------------------------------------------------------------------------
// Processes and ports

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = new Set();

function start(cmd, args, opts = {}) {
  const logPath = opts.log;
  const out = logPath ? fs.openSync(logPath, "a") : "ignore";
  const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ["ignore", out, out] });
  if (logPath) fs.closeSync(out);
  children.add(child);
  child.exited = new Promise((resolve) =>
    child.on("exit", (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  child.on("error", (e) => console.error(`bench: cannot start ${cmd}: ${e.message}`));
  return child;
}

async function stop(child, signal = "SIGTERM", ms = 15000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const t = setTimeout(() => child.kill("SIGKILL"), ms);
  await child.exited;
  clearTimeout(t);
}

process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});
for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => process.exit(130));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, ms = 10000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.on("connect", () => (s.destroy(), resolve(true)));
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
}

function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      children.delete(child);
      if (code !== 0 && !opts.allowFail) {
        reject(new Error(`${path.basename(cmd)} exited ${code}: ${stderr.trim() || stdout.trim()}`));
      } else resolve({ code, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// nginx, the receiver nobody here wrote

async function startNginx(dir, { accessLog = null } = {}) {
  fs.mkdirSync(path.join(dir, "tmp"), { recursive: true });
  const port = await freePort();
  const log = accessLog
    ? `log_format herald '$msec $http_webhook_id';\n  access_log ${accessLog} herald buffer=256k flush=1s;`
    : "access_log off;";
  const conf = `worker_processes 1;
daemon off;
master_process off;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 8192; }
http {
  ${log}
  client_body_temp_path ${dir}/tmp;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:${port} backlog=8192;
    location / { return 204; }
  }
}
`;
  const confPath = path.join(dir, "nginx.conf");
  fs.writeFileSync(confPath, conf);
  const proc = start("nginx", ["-c", confPath, "-p", dir], { log: path.join(dir, "nginx.out") });
  await waitForPort(port);
  return { proc, port, url: `http://127.0.0.1:${port}` };
}

// ---------------------------------------------------------------------------------------------
// herald

async function startHerald(dir, extraEnv = {}) {
  const port = await freePort();
  const dbPath = path.join(dir, "herald.db");
  // herald's defaults: none of the caller's HERALD_* settings leak in.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("HERALD_")));
  Object.assign(env, {
    HERALD_ADMIN_TOKEN: TOKEN,
    HERALD_ALLOW_PRIVATE_CIDRS: "127.0.0.0/8",
    HERALD_MASTER_KEY_FILE: path.join(dir, "herald.key"),
    ...extraEnv,
  });
  const proc = start(HERALD, ["serve", "--listen", `127.0.0.1:${port}`, "--db", dbPath], {
    env,
    log: path.join(dir, "herald.log"),
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15000;
  for (;;) {
    try {
      const r = await fetch(`${base}/api/v1/health`);
      if (r.status === 204) break;
    } catch {}
    if (proc.exitCode !== null) throw new Error(`herald exited: see ${dir}/herald.log`);
    if (Date.now() > deadline) throw new Error(`herald did not start: see ${dir}/herald.log`);
    await sleep(20);
  }
  return { proc, port, base, dbPath, dir };
}

async function api(h, method, p, body) {
  const r = await fetch(`${h.base}${p}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// One app with one endpoint per URL. Returns the app's id.
async function setupApp(h, urls) {
  const app = await api(h, "POST", "/api/v1/app", { name: "bench", uid: "bench" });
  for (const [i, url] of urls.entries()) {
    await api(h, "POST", `/api/v1/app/${app.id}/endpoint`, { url, uid: `ep${i}` });
  }
  return app.id;
}

async function metrics(h) {
  const text = await (await fetch(`${h.base}/metrics`)).text();
  const get = (re) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : 0;
  };
  return {
    at: performance.now(),
    success: get(/^herald_attempts_total\{outcome="success"\} (\d+)/m),
    httpError: get(/^herald_attempts_total\{outcome="http_error"\} (\d+)/m),
    networkError: get(/^herald_attempts_total\{outcome="network_error"\} (\d+)/m),
    accepted: get(/^herald_messages_accepted_total (\d+)/m),
    pending: get(/^herald_deliveries_pending (\d+)/m),
    lag: get(/^herald_queue_lag_seconds ([\d.]+)/m),
  };
}

function memory(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k) => Number((new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s) || [0, 0])[1]);
    return { rssMiB: kb("VmRSS") / 1024, peakMiB: kb("VmHWM") / 1024 };
  } catch {
    return { rssMiB: 0, peakMiB: 0 };
  }
}

// CPU time (seconds) used so far by each thread of `pid`, summed by thread name.
function cpuByThread(pid) {
  const out = {};
  let tasks = [];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      const comm = fs.readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim();
      const stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out[comm] = (out[comm] || 0) + (Number(f[11]) + Number(f[12])) / 100; // utime + stime, USER_HZ
    } catch {}
  }
  return out;
}

// Publishes at full speed (rate 0) or a fixed rate for `seconds`; resolves with loadgen's JSON.
async function publish(h, appId, { seconds, connections, rate = 0, acceptLog = null }) {
  const args = ["publish", "--url", h.base, "--token", TOKEN, "--app", appId, "--duration", String(seconds),
    "--connections", String(connections), "--rate", String(rate)];
  if (acceptLog) args.push("--accept-log", acceptLog);
  const { stdout } = await run(LOADGEN, args);
  return JSON.parse(stdout.trim().split("\n").pop());
}

// Runs a full-speed publisher for o.duration seconds and measures attempts recorded per second
// between a warm-up point and the end. `count(m)` picks what counts as a delivery.
async function measureDeliveries(h, appId, o, connections, count = (m) => m.success + m.httpError + m.networkError, nginxPid = null) {
  const warmup = Math.min(3, o.duration * 0.25) * 1000;
  const load = publish(h, appId, { seconds: o.duration, connections });
  await sleep(warmup);
  const m0 = await metrics(h);
  const cpu0 = { herald: cpuByThread(h.proc.pid), nginx: nginxPid ? cpuByThread(nginxPid) : {} };
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, memory(h.proc.pid).peakMiB)), 500);
  const pub = await load;
  const m1 = await metrics(h);
  const cpu1 = { herald: cpuByThread(h.proc.pid), nginx: nginxPid ? cpuByThread(nginxPid) : {} };
  clearInterval(sampler);
  peak = Math.max(peak, memory(h.proc.pid).peakMiB);
  const secs = (m1.at - m0.at) / 1000;
  // Cores used over the window, per herald thread (the HTTP workers are all "herald") and nginx.
  const cores = {};
  for (const [who, names] of Object.entries(cpu1)) {
    for (const [name, t1] of Object.entries(names)) {
      const key = who === "nginx" ? "nginx" : name;
      cores[key] = (cores[key] || 0) + (t1 - ((cpu0[who] || {})[name] || 0)) / secs;
    }
  }
  return {
    cores,
    deliveriesPerSec: (count(m1) - count(m0)) / secs,
    acceptedPerSec: pub.rate,
    publishErrors: pub.errors,
    pendingAtEnd: m1.pending,
    lagAtEnd: m1.lag,
    peakRssMiB: peak,
    window: secs,
    connections,
    // Kept up: less than a second's worth of deliveries left waiting at the end.
    sustained: m1.pending <= (count(m1) - count(m0)) / secs,
    m1,
  };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

async function ceiling(work, o) {
  const dir = path.join(work, `ceiling-${Date.now()}`);
  fs.mkdirSync(dir, { recursive: true });
  const nginx = await startNginx(dir);
  // The same body and signature headers herald sends.
  const lua = path.join(dir, "post.lua");
  fs.writeFileSync(
    lua,
    `wrk.method = "POST"
wrk.body = '{"type":"invoice.paid","data":{"id":"in_0_1","amount":4200,"currency":"usd","note":"${"x".repeat(136)}"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["webhook-id"] = "msg_0358qJtAR9C6MmCW0mW6Ic"
wrk.headers["webhook-timestamp"] = "1764590000"
wrk.headers["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
wrk.headers["svix-id"] = "msg_0358qJtAR9C6MmCW0mW6Ic"
wrk.headers["svix-timestamp"] = "1764590000"
wrk.headers["svix-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
`,
  );
  const { stdout } = await run("wrk", ["-t1", `-c${Math.max(...o.connections)}`, `-d${o.duration}s`, "-s", lua, `${nginx.url}/hook`]);
  await stop(nginx.proc);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!m) throw new Error(`wrk printed no rate:\n${stdout}`);
  return Number(m[1]);
}

async function endToEnd(work, o, { connections, backlog = 0, deadEndpoints = 0, profile = false }) {
  const dir = path.join(work, `e2e-${backlog}-${deadEndpoints}-${Date.now()}`);
  fs.mkdirSync(dir, { recursive: true });
  const nginx = await startNginx(dir);
  let hole = null;
  const urls = [];
  for (let i = 0; i < o.endpoints; i++) urls.push(`${nginx.url}/ep${i}`);
  if (deadEndpoints > 0) {
    const port = await freePort();
    hole = start(LOADGEN, ["blackhole", "--port", String(port), "--seconds", "3600"], { log: path.join(dir, "hole.log") });
    await waitForPort(port);
    for (let i = 0; i < deadEndpoints; i++) urls[i] = `http://127.0.0.1:${port}/dead${i}`;
  }
  let h = await startHerald(dir);
  const appId = await setupApp(h, urls);
  let seeded = null;
  if (backlog > 0) {
    await stop(h.proc);
    const t0 = performance.now();
    const { stdout } = await run(SEED, ["--db", h.dbPath, "--app", appId, "--deliveries", String(backlog)]);
    seeded = { ...JSON.parse(stdout.trim()), seconds: (performance.now() - t0) / 1000 };
    h = await startHerald(dir);
  }
  let perf = null;
  if (profile) {
    perf = start("perf", ["record", "-F", "499", "-g", "-p", String(h.proc.pid), "-o", path.join(dir, "perf.data"), "--", "sleep", String(Math.max(2, o.duration - 4))], { log: path.join(dir, "perf.log") });
  }
  const r = await measureDeliveries(h, appId, o, connections, (m) => m.success, nginx.proc.pid);
  if (perf) await perf.exited;
  const after = await metrics(h);
  r.failedAttempts = after.httpError + after.networkError;
  r.seeded = seeded;
  r.memoryAfter = memory(h.proc.pid);
  await stop(h.proc);
  await stop(nginx.proc);
  if (hole) await stop(hole);
  if (perf) r.profile = summarizeProfile(path.join(dir, "perf.data"));
  return r;
}

// Accept-to-receive latency at a fixed rate: accept times from the publisher, receive times
// from nginx's access log ($msec, millisecond resolution).
async function latency(work, o) {
  const dir = path.join(work, `latency-${Date.now()}`);
  fs.mkdirSync(dir, { recursive: true });
  const accessLog = path.join(dir, "access.log");
  const nginx = await startNginx(dir, { accessLog });
  const h = await startHerald(dir);
  const urls = [];
  for (let i = 0; i < o.endpoints; i++) urls.push(`${nginx.url}/ep${i}`);
  const appId = await setupApp(h, urls);
  const acceptLog = path.join(dir, "accepted.txt");
  const pub = await publish(h, appId, { seconds: o.duration, connections: 16, rate: o.rate, acceptLog });
  // Let the last deliveries land and nginx flush its log.
  const deadline = Date.now() + 30000;
  while ((await metrics(h)).pending > 0 && Date.now() < deadline) await sleep(100);
  await stop(h.proc);
  await stop(nginx.proc, "SIGQUIT");
  const accepted = new Map();
  for (const line of fs.readFileSync(acceptLog, "utf8").split("\n")) {
    const [id, ms] = line.split(" ");
    if (id) accepted.set(id, Number(ms));
  }
  const samples = []; // [accept ms, latency ms]
  let early = 0;
  for (const line of fs.readFileSync(accessLog, "utf8").split("\n")) {
    const [msec, id] = line.split(" ");
    if (!id || !accepted.has(id)) continue;
    let l = Number(msec) * 1000 - accepted.get(id);
    if (l < 0) {
      early++; // nginx logged within the millisecond the publisher read the 202
      l = 0;
    }
    samples.push([accepted.get(id), l]);
  }
  const lat = samples.map((s) => s[1]).sort((a, b) => a - b);
  const expected = pub.accepted * o.endpoints;
  return {
    rate: pub.rate,
    messages: pub.accepted,
    deliveries: lat.length,
    expected,
    early,
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    max: lat.length ? lat[lat.length - 1] : NaN,
    samples,
  };
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

function summarizeProfile(data) {
  try {
    const opts = { encoding: "utf8", maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "ignore"] };
    const byDso = execFileSync("perf", ["report", "-i", data, "--no-children", "--sort", "dso", "--stdio", "-g", "none"], opts);
    const bySym = execFileSync("perf", ["report", "-i", data, "--no-children", "--sort", "dso,symbol", "--stdio", "-g", "none"], opts);
    const lines = (t, n) => t.split("\n").filter((l) => /^\s+[\d.]+%/.test(l)).slice(0, n).map((l) => l.replace(/\s+$/, "").slice(0, 110));
    return { byDso: lines(byDso, 10), bySymbol: lines(bySym, 20) };
  } catch (e) {
    return { error: String(e.message).split("\n")[0] };
  }
}

// ---------------------------------------------------------------------------------------------
// The report

function latencyChart(samples, file) {
  // Per-second p50 and p99 over the run, as an SVG line chart.
  if (!samples.length) return false;
  const t0 = samples.reduce((m, s) => Math.min(m, s[0]), Infinity);
  const buckets = new Map();
  for (const [t, l] of samples) {
    const k = Math.floor((t - t0) / 1000);
    if (!buckets.has(k)) buckets.set(k, []);
    buckets.get(k).push(l);
  }
  const secs = [...buckets.keys()].sort((a, b) => a - b);
  const rows = secs.map((k) => {
    const s = buckets.get(k).sort((a, b) => a - b);
    return { k, p50: pct(s, 50), p99: pct(s, 99), max: s[s.length - 1] };
  });
  const W = 760, H = 320, L = 56, R = 120, T = 20, B = 40;
  const xMax = Math.max(1, secs[secs.length - 1]);
  const yMax = rows.reduce((m, r) => Math.max(m, r.p99), 20) * 1.1;
  const x = (k) => L + (k / xMax) * (W - L - R);
  const y = (v) => T + (1 - v / yMax) * (H - T - B);
  const line = (key) => rows.map((r, i) => `${i ? "L" : "M"}${x(r.k).toFixed(1)},${y(r[key]).toFixed(1)}`).join(" ");
  const ticks = [];
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    ticks.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(1)}</text>`);
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
${ticks.join("\n")}
<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333"/>
<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/>
<line x1="${L}" x2="${W - R}" y1="${y(20)}" y2="${y(20)}" stroke="#c00" stroke-dasharray="4 3"/>
<text x="${W - R + 6}" y="${y(20) + 4}" fill="#c00">target p99 20 ms</text>
<path d="${line("p50")}" fill="none" stroke="#2a7" stroke-width="2"/>
<path d="${line("p99")}" fill="none" stroke="#d80" stroke-width="2"/>
<text x="${W - R + 6}" y="${H - B - 22}" fill="#d80">p99</text>
<text x="${W - R + 6}" y="${H - B - 6}" fill="#2a7">p50</text>
<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">seconds into the run</text>
<text x="14" y="${(T + H - B) / 2}" transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">accept → receive (ms)</text>
<text x="${L}" y="${H - B + 16}" text-anchor="middle">0</text>
<text x="${W - R}" y="${H - B + 16}" text-anchor="middle">${xMax}</text>
</svg>
`;
  fs.writeFileSync(file, svg);
  return true;
}

function version(cmd, args, re = /.*/) {
  // Some tools print their version on stderr, or exit non-zero after printing it.
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  const text = `${r.stdout || ""}${r.stderr || ""}`;
  return ((re.exec(text) || ["unknown"])[0] || "unknown").trim();
}

function machine() {
  const cpu = (/model name\s*:\s*(.*)/.exec(fs.readFileSync("/proc/cpuinfo", "utf8")) || [0, "unknown"])[1];
  return {
    cpu,
    cores: os.cpus().length,
    memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: os.release(),
    herald: version(HERALD, ["version"]),
    nginx: version("nginx", ["-v"], /nginx\/[\d.]+/),
    wrk: version("wrk", ["-v"], /wrk \S+/),
    sqlite: version("sqlite3", ["--version"], /^[\d.]+/),
    curl: version("curl", ["--version"], /libcurl\/[\d.]+/),
    node: process.version,
  };
}

const f0 = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "n/a");
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "n/a");
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
const verdict = (ok) => (ok ? "met" : "**missed**");

function report(o, m, r, chartName) {
  const ratio = r.e2eMedian / r.ceilingMedian;
  const backlogRatio = r.backlog.deliveriesPerSec / r.e2eSuccessMedian;
  const healthyBase = r.e2eSuccessMedian * ((o.endpoints - r.dead) / o.endpoints);
  const isolation = r.isolation.deliveriesPerSec / healthyBase;
  const cmd = o.smoke ? "node bench/run.mjs --smoke" : "bench/run.sh";
  const lines = [];
  lines.push(`# herald benchmark results${o.smoke ? " (smoke run: figures mean nothing)" : ""}`);
  lines.push("");
  lines.push(`Written by \`${cmd}\` on ${new Date().toISOString()}. Every figure below was measured in this one run, on this machine.`);
  lines.push("");
  lines.push("## Machine and versions");
  lines.push("");
  lines.push(`| | |\n|---|---|`);
  lines.push(`| CPU | ${m.cpu} (${m.cores} cores) |`);
  lines.push(`| memory | ${m.memGiB} GiB |`);
  lines.push(`| kernel | ${m.kernel} |`);
  lines.push(`| herald | ${m.herald} (build: ${path.relative(ROOT, HERALD)}) |`);
  lines.push(`| receiver | ${m.nginx}, 1 worker, \`return 204\` |`);
  lines.push(`| load | ${m.wrk}; herald_loadgen (bench/loadgen.cc) |`);
  lines.push(`| libraries | SQLite ${m.sqlite}, ${m.curl}, Node.js ${m.node} |`);
  lines.push("");
  lines.push("## Settings");
  lines.push("");
  lines.push(`- ${o.endpoints} endpoints on one app, every message fanned out to all of them; payload about 256 bytes.`);
  lines.push(`- Throughput windows of ${o.duration} s (the first ${Math.min(3, o.duration * 0.25)} s are warm-up and not counted), ${o.repeats} repeat(s), interleaved ceiling / herald; medians quoted.`);
  lines.push(`- Publisher: herald_loadgen at full speed over ${o.connections.join(", ")} keep-alive connections (one run each per repeat); a run is *sustained* when herald kept up (less than a second's worth of deliveries pending at its end), and a repeat's figure is its best sustained run. The backlog and dead-endpoint scenarios use ${r.connections} connections, the size most often best, and compare with the empty-queue run of that size.`);
  lines.push(`- wrk: 1 thread, ${Math.max(...o.connections)} connections, the same body and signature headers herald sends.`);
  lines.push(`- herald with its defaults (SQLite WAL, \`synchronous=FULL\` for accepted messages, 512 in flight, 32 per endpoint, 15 s request timeout).`);
  lines.push("");
  lines.push("## Figures against the targets");
  lines.push("");
  lines.push("| measure | result | target | |");
  lines.push("|---|---|---|---|");
  lines.push(`| wrk ceiling (POST to nginx) | ${f0(r.ceilingMedian)} req/s (runs: ${r.ceilings.map(f0).join(", ")}) | | |`);
  lines.push(`| herald end to end, sustained: accepted, signed, delivered, attempt recorded | ${f0(r.e2eMedian)} deliveries/s (repeats: ${r.e2es.map((x) => `${f0(x.deliveriesPerSec)} at ${x.connections} conn.`).join(", ")}) | | |`);
  lines.push(`| ratio to the ceiling | ${f2(ratio)} | ≥ 0.30 | ${verdict(ratio >= 0.3)} |`);
  lines.push(`| accept → receive at ${f0(o.rate)} messages/s (${f0(o.rate * o.endpoints)} deliveries/s) | p50 ${f1(r.latency.p50)} ms, p99 ${f1(r.latency.p99)} ms, max ${f1(r.latency.max)} ms (${f0(r.latency.deliveries)} of ${f0(r.latency.expected)} deliveries seen) | p99 ≤ 20 ms | ${verdict(r.latency.p99 <= 20)} |`);
  lines.push(`| throughput with a ${f0(o.backlog)}-delivery backlog (due at once) | ${f0(r.backlog.deliveriesPerSec)} deliveries/s vs ${f0(r.e2eSuccessMedian)} with an empty queue (seeded in ${f1(r.backlog.seeded?.seconds)} s) | ≥ 0.8 × empty | ${f2(backlogRatio)}: ${verdict(backlogRatio >= 0.8)} |`);
  lines.push(`| healthy endpoints with ${r.dead} of ${o.endpoints} never answering | ${f0(r.isolation.deliveriesPerSec)} successful deliveries/s vs ${f0(healthyBase)} to the same endpoints with none failing | ≥ 0.9 | ${f2(isolation)}: ${verdict(isolation >= 0.9)} |`);
  lines.push(`| peak memory (RSS) | empty queue ${f0(median(r.e2es.map((x) => x.peakRssMiB)))} MiB; ${f0(o.backlog)} backlog ${f0(r.backlog.peakRssMiB)} MiB; dead endpoints ${f0(r.isolation.peakRssMiB)} MiB | bounded | |`);
  lines.push("");
  if (ratio < 0.3) {
    const need = 0.3 * r.ceilingMedian;
    lines.push(`The throughput target is missed by a factor of ${f1(need / r.e2eMedian)}: 0.30 of the ceiling is ${f0(need)} deliveries/s. Each of those is a durable message share, two SQLite row writes and an update, a signed HTTP request and a recorded attempt; the sections below show how many microseconds of CPU each costs and where they go. On ${m.cores} cores shared with the receiver and the publisher, the rate herald can sustain is bounded by that cost, not by waiting: see "Where the cores go".`);
    lines.push("");
  }
  lines.push("Every empty-queue run (deliveries/s recorded; messages/s accepted; deliveries pending at the end):");
  lines.push("");
  lines.push(`| repeat | ${o.connections.map((c) => `${c} connections`).join(" | ")} |`);
  lines.push(`|---|${o.connections.map(() => "---").join("|")}|`);
  r.sweeps.forEach((sw, i) => lines.push(`| ${i + 1} | ${sw.map((e) => `${f0(e.deliveriesPerSec)}; ${f0(e.acceptedPerSec)}; ${f0(e.pendingAtEnd)}${e.sustained ? "" : " (behind)"}`).join(" | ")} |`));
  lines.push("");
  lines.push(`The backlog run ended with ${f0(r.backlog.pendingAtEnd)} deliveries pending.`);
  lines.push("");
  lines.push("## Latency");
  lines.push("");
  lines.push(`Accept time is when the publisher read herald's 202; receive time is nginx's \`$msec\` for the request carrying that \`webhook-id\` (millisecond resolution; ${f0(r.latency.early)} deliveries landed within the millisecond of the 202 and count as 0).`);
  lines.push("");
  if (chartName) lines.push(`![accept to receive latency per second](${chartName})`);
  lines.push("");
  const best = r.e2es.reduce((a, b) => (b.deliveriesPerSec > a.deliveriesPerSec ? b : a));
  if (best.cores) {
    lines.push(`## Where the cores go (the best empty-queue run: ${f0(best.deliveriesPerSec)} deliveries/s, ${best.connections} connections)`);
    lines.push("");
    lines.push("CPU used during the measured window, from /proc (the HTTP server's workers are the threads named `herald`; the publisher and wrk are not herald's):");
    lines.push("");
    lines.push("| thread | what it does | cores | µs of CPU per delivery |");
    lines.push("|---|---|---|---|");
    const what = {
      "herald-sched": "claims, signs, records attempts (SQLite, synchronous=NORMAL)",
      "herald-send": "libcurl multi: the HTTP requests to endpoints",
      "herald-write": "group commit of accepted messages and their deliveries (SQLite, FULL)",
      herald: "HTTP API workers: parse, validate, reply",
      nginx: "the receiver",
    };
    let total = 0;
    for (const [name, c] of Object.entries(best.cores).sort((a, b) => b[1] - a[1])) {
      if (c < 0.005) continue;
      if (name !== "nginx") total += c;
      lines.push(`| ${name} | ${what[name] || ""} | ${f2(c)} | ${f1((c * 1e6) / best.deliveriesPerSec)} |`);
    }
    lines.push(`| herald in all | | ${f2(total)} | ${f1((total * 1e6) / best.deliveriesPerSec)} |`);
    lines.push("");
  }
  if (r.profile) {
    lines.push("## Where the time goes (perf, herald process, empty-queue run)");
    lines.push("");
    if (r.profile.error) lines.push(`perf failed: ${r.profile.error}`);
    else {
      lines.push("By library:");
      lines.push("```");
      lines.push(...r.profile.byDso);
      lines.push("```");
      lines.push("Top symbols:");
      lines.push("```");
      lines.push(...r.profile.bySymbol);
      lines.push("```");
    }
    lines.push("");
  }
  lines.push("## Reproduce");
  lines.push("");
  lines.push("```sh");
  lines.push("bench/run.sh            # installs nginx, wrk and perf if missing, builds, runs, writes this file");
  lines.push("bench/run.sh --duration 30 --repeats 5 --endpoints 10 --backlog 1000000");
  lines.push("```");
  lines.push("");
  return { text: lines.join("\n"), ratio, backlogRatio, isolation };
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const o = parseArgs(process.argv.slice(2));
  for (const bin of [HERALD, LOADGEN, SEED]) {
    if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: build first (scripts/build.sh)`);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "herald-bench-"));
  const log = (s) => console.log(`bench: ${s}`);
  const m = machine();
  log(`${m.cpu}, ${m.cores} cores; work dir ${work}`);
  const r = { ceilings: [], e2es: [], sweeps: [], dead: Math.max(1, Math.round(o.endpoints / 10)) };
  // Each repeat: the ceiling, then herald against publishers of each size; the repeat's figure
  // is its best sustained run (or its best run, if none kept up).
  for (let i = 0; i < o.repeats; i++) {
    r.ceilings.push(await ceiling(work, o));
    log(`ceiling run ${i + 1}: ${f0(r.ceilings.at(-1))} req/s`);
    const sweep = [];
    for (const c of o.connections) {
      const e = await endToEnd(work, o, { connections: c });
      sweep.push(e);
      log(`end-to-end run ${i + 1}, ${c} connections: ${f0(e.deliveriesPerSec)} deliveries/s, ${f0(e.acceptedPerSec)} messages/s accepted, ${f0(e.pendingAtEnd)} pending at the end${e.sustained ? "" : " (not kept up)"}`);
    }
    r.sweeps.push(sweep);
    const kept = sweep.filter((e) => e.sustained);
    const pool = kept.length ? kept : sweep;
    r.e2es.push(pool.reduce((a, b) => (b.deliveriesPerSec > a.deliveriesPerSec ? b : a)));
  }
  r.ceilingMedian = median(r.ceilings);
  r.e2eMedian = median(r.e2es.map((x) => x.deliveriesPerSec));
  // The publisher size most often best: the other scenarios use it.
  const counts = new Map();
  for (const e of r.e2es) counts.set(e.connections, (counts.get(e.connections) || 0) + 1);
  r.connections = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
  r.e2eSuccessMedian = median(r.sweeps.map((sw) => sw.find((e) => e.connections === r.connections).deliveriesPerSec));
  if (o.profile && hasPerf()) {
    r.profile = (await endToEnd(work, o, { connections: r.connections, profile: true })).profile;
  }
  r.latency = await latency(work, o);
  log(`latency at ${o.rate}/s: p50 ${f1(r.latency.p50)} ms, p99 ${f1(r.latency.p99)} ms, max ${f1(r.latency.max)} ms`);
  r.backlog = await endToEnd(work, o, { connections: r.connections, backlog: o.backlog });
  log(`with a ${f0(o.backlog)} backlog: ${f0(r.backlog.deliveriesPerSec)} deliveries/s`);
  r.isolation = await endToEnd(work, o, { connections: r.connections, deadEndpoints: r.dead });
  log(`with ${r.dead} dead endpoint(s): ${f0(r.isolation.deliveriesPerSec)} successful deliveries/s`);

  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  const chartName = path.basename(o.out).replace(/\.md$/i, "") + "-latency.svg";
  const charted = latencyChart(r.latency.samples, path.join(path.dirname(o.out), chartName));
  const rep = report(o, m, r, charted ? chartName : null);
  fs.writeFileSync(o.out, rep.text);
  log(`wrote ${path.relative(process.cwd(), o.out)}: ratio ${f2(rep.ratio)}, p99 ${f1(r.latency.p99)} ms, backlog ${f2(rep.backlogRatio)}, isolation ${f2(rep.isolation)}`);

  // Broken, not slow: a scenario that delivered nothing, lost a message, or got errors.
  const problems = [];
  if (!(r.ceilingMedian > 0)) problems.push("wrk measured nothing");
  for (const [name, x] of [["end to end", r.e2es[0]], ["backlog", r.backlog], ["isolation", r.isolation]]) {
    if (!(x.deliveriesPerSec > 0)) problems.push(`${name}: no delivery recorded`);
    if (x.publishErrors > 0) problems.push(`${name}: ${x.publishErrors} publish errors`);
  }
  if (r.latency.deliveries < r.latency.expected) {
    problems.push(`latency: ${r.latency.expected - r.latency.deliveries} accepted deliveries never reached nginx`);
  }
  if (problems.length) {
    console.error(`bench: FAILED\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  fs.rmSync(work, { recursive: true, force: true });
}

function hasPerf() {
  try {
    execFileSync("perf", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

main().catch((e) => {
  console.error(`bench: ${e.message}`);
  process.exit(1);
});
