// What bench/run.mjs and bench/soak.mjs share: the binaries, the processes they start (each
// stopped before the script exits), nginx as the receiver nobody here wrote, herald with its
// API and metrics, and the load generator. Node's standard library only.
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const BUILD = path.resolve(ROOT, process.env.HERALD_BUILD_DIR || "build");
export const HERALD = process.env.HERALD_BIN || path.join(BUILD, "herald");
export const LOADGEN = path.join(BUILD, "bench", "herald_loadgen");
export const TOKEN = "bench_admin_token_0123456789";
// Every node on one PostgreSQL database seals secrets with the same key (HERALD_MASTER_KEY).
export const PG_MASTER_KEY = crypto.randomBytes(32).toString("base64");

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = new Set();

export function start(cmd, args, opts = {}) {
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

export async function stop(child, signal = "SIGTERM", ms = 15000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const t = setTimeout(() => child.kill("SIGKILL"), ms);
  await child.exited;
  clearTimeout(t);
}

// Kills whatever is still running (for the scripts' exit handlers).
export function killChildren() {
  for (const c of children) c.kill("SIGKILL");
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port, ms = 10000) {
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

export function run(cmd, args, opts = {}) {
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

export async function startNginx(dir, { accessLog = null } = {}) {
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

// Starts `herald serve` on a SQLite file in `dir`, or, with `db`, on that PostgreSQL URI (with
// the bench's master key); its output goes to `dir`/`name`.log.
export async function startHerald(dir, extraEnv = {}, { db = null, name = "herald" } = {}) {
  const port = await freePort();
  const dbPath = db ?? path.join(dir, "herald.db");
  // herald's defaults: none of the caller's HERALD_* settings leak in.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("HERALD_")));
  Object.assign(env, {
    HERALD_ADMIN_TOKEN: TOKEN,
    HERALD_ALLOW_PRIVATE_CIDRS: "127.0.0.0/8",
    ...(db ? { HERALD_MASTER_KEY: PG_MASTER_KEY } : { HERALD_MASTER_KEY_FILE: path.join(dir, "herald.key") }),
    ...extraEnv,
  });
  const proc = start(HERALD, ["serve", "--listen", `127.0.0.1:${port}`, "--db", dbPath], {
    env,
    log: path.join(dir, `${name}.log`),
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15000;
  for (;;) {
    try {
      const r = await fetch(`${base}/api/v1/health`);
      if (r.status === 204) break;
    } catch {}
    if (proc.exitCode !== null) throw new Error(`herald exited: see ${dir}/${name}.log`);
    if (Date.now() > deadline) throw new Error(`herald did not start: see ${dir}/${name}.log`);
    await sleep(20);
  }
  return { proc, port, base, dbPath, dir };
}

export async function api(h, method, p, body) {
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
export async function setupApp(h, urls) {
  const app = await api(h, "POST", "/api/v1/app", { name: "bench", uid: "bench" });
  for (const [i, url] of urls.entries()) {
    await api(h, "POST", `/api/v1/app/${app.id}/endpoint`, { url, uid: `ep${i}` });
  }
  return app.id;
}

export async function metrics(h) {
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
    sqliteBytes: get(/^herald_sqlite_memory_bytes (\d+)/m),
    heapInUseBytes: get(/^herald_heap_bytes\{state="in_use"\} (\d+)/m),
    heapFreeBytes: get(/^herald_heap_bytes\{state="free"\} (\d+)/m),
  };
}

export function memory(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k) => Number((new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s) || [0, 0])[1]);
    return { rssMiB: kb("VmRSS") / 1024, peakMiB: kb("VmHWM") / 1024 };
  } catch {
    return { rssMiB: 0, peakMiB: 0 };
  }
}

export async function publish(h, appId, { seconds, connections, rate = 0, acceptLog = null }) {
  const args = ["publish", "--url", h.base, "--token", TOKEN, "--app", appId, "--duration", String(seconds),
    "--connections", String(connections), "--rate", String(rate)];
  if (acceptLog) args.push("--accept-log", acceptLog);
  const { stdout } = await run(LOADGEN, args);
  return JSON.parse(stdout.trim().split("\n").pop());
}


// bench/RESULTS.md's soak section (bench/soak.mjs) lies between these markers, so that run.mjs,
// which writes the rest of the file anew, keeps it.
export const SOAK_BEGIN = "<!-- soak: written by bench/soak.mjs -->";
export const SOAK_END = "<!-- /soak -->";

// `text` (a report without a soak section) followed by the soak section of `old`, if any.
export function withSoakSection(text, old) {
  const i = old.indexOf(SOAK_BEGIN);
  const j = old.indexOf(SOAK_END);
  if (i < 0 || j < i) return text;
  return `${text.trimEnd()}\n\n${old.slice(i, j + SOAK_END.length)}\n`;
}
