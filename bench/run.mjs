// herald's benchmark: measures, on the machine it runs on, wrk's raw POST ceiling against an
// nginx receiver answering 204, and herald end to end against that same receiver in the same
// run (see bench/README.md). Writes bench/RESULTS.md (or --out) and a latency chart beside it.
//
//   node bench/run.mjs [--smoke] [--out FILE] [--duration S] [--repeats N] [--endpoints N]
//                      [--connections N,N,...] [--rate N] [--backlog N] [--no-profile]
//                      [--no-postgres] [--pg-setting NAME=VALUE]... [--baseline FILE]
//
// PostgreSQL: unless --no-postgres, the same throughput and latency scenarios run against a
// throwaway, durable PostgreSQL server of the bench's own (scripts/pg-test-server.sh with
// HERALD_PG_DURABLE=1), with one herald node and with two nodes sharing its database, and the
// CPU of herald's processes and of every PostgreSQL server process is measured per delivery.
//
// Sustained throughput: herald runs against publishers of each --connections count; a run
// is sustained when herald kept up (less than a second's worth of deliveries pending at its
// end), and the figure is the best sustained delivery rate.
//
// Uses only Node's standard library. Every process it starts listens on 127.0.0.1 only and is
// stopped before it exits. Exits non-zero when a scenario delivered nothing or failed.
import { spawnSync, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import {
  BUILD,
  HERALD,
  LOADGEN,
  ROOT,
  freePort,
  killChildren,
  memory,
  metrics,
  publish,
  run,
  setupApp,
  sleep,
  start,
  startHerald,
  startNginx,
  stop,
  waitForPort,
  withSoakSection,
} from "./lib.mjs";

const SEED = path.join(BUILD, "bench", "herald_seed");
const PG_SCRIPT = path.join(ROOT, "scripts", "pg-test-server.sh");
const USER_HZ = 100; // /proc/<pid>/stat's clock ticks (sysconf(_SC_CLK_TCK) on Linux)

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
    postgres: true,
    pgSettings: [],
    pgConnections: null, // --pg-connections; default: --connections
    baseline: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--smoke") o.smoke = true;
    else if (a === "--no-profile") o.profile = false;
    else if (a === "--no-postgres") o.postgres = false;
    else if (a === "--baseline") o.baseline = next();
    else if (a === "--pg-setting") {
      const v = next();
      const m = /^([a-z_][a-z0-9_.]*)=(.*)$/i.exec(v);
      if (!m) throw new Error(`--pg-setting wants NAME=VALUE, not ${v}`);
      o.pgSettings.push([m[1], m[2]]);
    }
    else if (a === "--out") o.out = next();
    else if (a === "--duration") o.duration = Number(next());
    else if (a === "--repeats") o.repeats = Number(next());
    else if (a === "--endpoints") o.endpoints = Number(next());
    else if (a === "--connections") o.connections = next().split(",").map(Number);
    else if (a === "--pg-connections") o.pgConnections = next().split(",").map(Number);
    else if (a === "--rate") o.rate = Number(next());
    else if (a === "--backlog") o.backlog = Number(next());
    else throw new Error(`unknown argument ${a}`);
  }
  if (o.smoke) {
    Object.assign(o, { duration: 2, repeats: 1, connections: [8], rate: 100, backlog: 5000, profile: false });
  }
  // The statement profile on PostgreSQL (pg_stat_statements) is taken with the perf profile,
  // and in smoke mode too, so that its code keeps working.
  o.statements = o.postgres && (o.profile || o.smoke);
  for (const k of ["duration", "repeats", "endpoints", "rate", "backlog"]) {
    if (!Number.isFinite(o[k]) || o[k] <= 0) throw new Error(`--${k} must be a positive number`);
  }
  o.pgConnections = o.smoke ? o.connections : o.pgConnections ?? o.connections;
  for (const [flag, cs] of [["--connections", o.connections], ["--pg-connections", o.pgConnections]]) {
    if (!cs.length || cs.some((c) => !Number.isInteger(c) || c <= 0)) throw new Error(`${flag} must be positive integers, comma-separated`);
  }
  if (o.endpoints < 2) throw new Error("--endpoints must be at least 2 (one may be a dead one)");
  o.out = o.out ?? path.join(ROOT, o.smoke ? "bench/out/smoke/RESULTS.md" : "bench/RESULTS.md");
  // SQLite's figure is compared with the report this run replaces, unless told another.
  o.baseline = o.baseline ?? o.out;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Processes and ports

process.on("exit", () => {
  killChildren();
  pgStopSync(); // the PostgreSQL server too, whatever happened
});
for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => process.exit(130));

// ---------------------------------------------------------------------------------------------
// nginx, the receiver nobody here wrote

// ---------------------------------------------------------------------------------------------
// herald

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
// The same through every node at once: the connections (and the rate) split between the nodes'
// APIs, one publisher per node; node i's accept log is `acceptLog`.i when there are several.
// Resolves with the publishers' figures added up.
async function publishAll(hs, appId, { seconds, connections, rate = 0, acceptLog = null }) {
  if (hs.length === 1) return publish(hs[0], appId, { seconds, connections, rate, acceptLog });
  const runs = hs.map((h, i) => {
    const c = Math.floor(connections / hs.length) + (i < connections % hs.length ? 1 : 0);
    if (c === 0) return null;
    return publish(h, appId, { seconds, connections: c, rate: rate / hs.length, acceptLog: acceptLog && `${acceptLog}.${i}` });
  });
  const pubs = (await Promise.all(runs)).filter(Boolean);
  const sum = (k) => pubs.reduce((a, p) => a + p[k], 0);
  return { sent: sum("sent"), accepted: sum("accepted"), errors: sum("errors"), rate: sum("rate"),
    seconds: Math.max(...pubs.map((p) => p.seconds)) };
}

// /metrics of every node: the counters (attempts, accepted) added up, the queue gauges (the
// whole queue's on PostgreSQL) from the first node.
async function metricsAll(hs) {
  if (hs.length === 1) return metrics(hs[0]);
  const ms = await Promise.all(hs.map((h) => metrics(h)));
  const out = { ...ms[0], at: performance.now() };
  for (const k of ["success", "httpError", "networkError", "accepted"]) out[k] = ms.reduce((a, m) => a + m[k], 0);
  return out;
}

// CPU time (seconds) used so far by the process `pid`, its threads that exited included (which
// /proc/<pid>/task no longer lists: cpp-httplib's pool may start and end workers).
function cpuOfProcess(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

// cpuByThread over every node, summed by thread name.
function cpuByThreads(hs) {
  const out = {};
  for (const h of hs) for (const [name, t] of Object.entries(cpuByThread(h.proc.pid))) out[name] = (out[name] || 0) + t;
  return out;
}

// Runs a full-speed publisher for o.duration seconds and measures attempts recorded per second
// between a warm-up point and the end. `count(m)` picks what counts as a delivery. `hs` is one
// herald or several nodes sharing one PostgreSQL database; with `withPg`, the CPU of the
// PostgreSQL server's processes is measured over the same window.
async function measureDeliveries(hs, appId, o, connections, count = (m) => m.success + m.httpError + m.networkError, nginxPid = null, withPg = false) {
  if (!Array.isArray(hs)) hs = [hs];
  const warmup = Math.min(3, o.duration * 0.25) * 1000;
  const load = publishAll(hs, appId, { seconds: o.duration, connections });
  await sleep(warmup);
  const m0 = await metricsAll(hs);
  const cpu0 = { herald: cpuByThreads(hs), nginx: nginxPid ? cpuByThread(nginxPid) : {} };
  const herald0 = hs.reduce((a, h) => a + cpuOfProcess(h.proc.pid), 0);
  const pg0 = withPg ? pgCpu() : null;
  let peak = 0;
  const peakNow = () => Math.max(...hs.map((h) => memory(h.proc.pid).peakMiB));
  const sampler = setInterval(() => (peak = Math.max(peak, peakNow())), 500);
  const pub = await load;
  const m1 = await metricsAll(hs);
  const cpu1 = { herald: cpuByThreads(hs), nginx: nginxPid ? cpuByThread(nginxPid) : {} };
  const herald1 = hs.reduce((a, h) => a + cpuOfProcess(h.proc.pid), 0);
  const pg1 = withPg ? pgCpu() : null;
  clearInterval(sampler);
  peak = Math.max(peak, peakNow());
  const secs = (m1.at - m0.at) / 1000;
  // Cores used over the window, per herald thread (the HTTP workers are all "herald"; several
  // nodes' threads of one name are added up) and nginx.
  const cores = {};
  for (const [who, names] of Object.entries(cpu1)) {
    for (const [name, t1] of Object.entries(names)) {
      const key = who === "nginx" ? "nginx" : name;
      cores[key] = (cores[key] || 0) + (t1 - ((cpu0[who] || {})[name] || 0)) / secs;
    }
  }
  // What threads that ended during the window used (the process's time less its threads').
  const threadCores = Object.entries(cores).filter(([k]) => k !== "nginx").reduce((a, [, c]) => a + c, 0);
  const ended = (herald1 - herald0) / secs - threadCores;
  if (ended > 0.005) cores["(threads that ended)"] = ended;
  const deliveriesPerSec = (count(m1) - count(m0)) / secs;
  const r = {
    cores,
    deliveriesPerSec,
    acceptedPerSec: pub.rate,
    publishErrors: pub.errors,
    pendingAtEnd: m1.pending,
    lagAtEnd: m1.lag,
    peakRssMiB: peak, // the largest node's
    window: secs,
    connections,
    nodes: hs.length,
    // Kept up: less than a second's worth of deliveries left waiting at the end.
    sustained: m1.pending <= (count(m1) - count(m0)) / secs,
    // herald's API has 64 workers and a keep-alive connection holds one: with as many
    // publisher connections on a node, /metrics is answered only once the publisher stops,
    // and the window is too short to mean anything.
    unmeasured: secs < 0.75 * (o.duration - warmup / 1000),
    m1,
  };
  if (withPg) {
    // PostgreSQL's cores over the window, by kind of server process.
    r.pgCores = {};
    for (const [k, t1] of Object.entries(pg1.kinds)) r.pgCores[k] = (t1 - (pg0.kinds[k] || 0)) / secs;
    const heraldCores = Object.entries(cores).filter(([k]) => k !== "nginx").reduce((a, [, c]) => a + c, 0);
    const pgCores = (pg1.total - pg0.total) / secs;
    const us = (c) => (deliveriesPerSec > 0 ? (c * 1e6) / deliveriesPerSec : NaN);
    r.cpu = { heraldCores, pgCores, herald: us(heraldCores), pg: us(pgCores), total: us(heraldCores + pgCores) };
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: a throwaway server of the bench's own (scripts/pg-test-server.sh), durable
// (HERALD_PG_DURABLE=1: fsync, synchronous_commit and full_page_writes on, PostgreSQL's
// defaults), on a Unix socket only, in a directory under the system's temporary directory
// (where the SQLite files of the other scenarios are too). Stopped and removed when the bench
// exits, whatever the reason (the "exit" handler above).

let pg = null; // { dir, uri, postmaster, keepLog }
let pgSeq = 0;

function pgInstalled() {
  try {
    return fs.readdirSync("/usr/lib/postgresql").some((v) => fs.existsSync(`/usr/lib/postgresql/${v}/bin/initdb`));
  } catch {
    return false;
  }
}

function pgServerBin(name) {
  const v = fs.readdirSync("/usr/lib/postgresql").sort((a, b) => Number(a) - Number(b)).pop();
  return `/usr/lib/postgresql/${v}/bin/${name}`;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
}

function postmasterPid(dir) {
  return Number(fs.readFileSync(path.join(dir, "data", "postmaster.pid"), "utf8").split("\n")[0]);
}

// Starts the server; its log is copied to `work` when the bench stops it.
function pgStart(work) {
  // A bench that was killed outright (SIGKILL, a ctest timeout) could not stop its server: the
  // directory names the bench's pid, so one whose bench is gone is stopped and removed here.
  for (const name of fs.readdirSync(os.tmpdir())) {
    const m = /^herald-bench-pg-(\d+)$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) {
      spawnSync(PG_SCRIPT, ["stop", path.join(os.tmpdir(), name)], { stdio: "ignore" });
    }
  }
  const dir = path.join(os.tmpdir(), `herald-bench-pg-${process.pid}`);
  pg = { dir, keepLog: path.join(work, "postgresql.log") };
  const r = spawnSync(PG_SCRIPT, ["start", dir], { env: { ...process.env, HERALD_PG_DURABLE: "1" }, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`cannot start PostgreSQL (${PG_SCRIPT} start ${dir}): ${(r.stderr || "").trim()}`);
  pg.uri = r.stdout.trim().split("\n").pop();
  pg.postmaster = postmasterPid(dir);
  return pg;
}

function pgStopSync() {
  if (!pg) return;
  const p = pg;
  pg = null;
  try {
    if (fs.existsSync(path.dirname(p.keepLog))) fs.copyFileSync(path.join(p.dir, "server.log"), p.keepLog);
  } catch {}
  spawnSync(PG_SCRIPT, ["stop", p.dir], { stdio: "ignore" });
}

// The server's URI with another database name.
function pgUriFor(db) {
  return pg.uri.replace(/^(postgres(?:ql)?:\/\/[^/?]*)\/[^?]*/, `$1/${db}`);
}

// Runs each statement with psql on `db`; resolves with the rows of the output (tab-separated).
async function psql(sqls, db = "postgres") {
  const args = [pgUriFor(db), "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"];
  for (const s of [].concat(sqls)) args.push("-c", s);
  const { stdout } = await run("psql", args);
  return stdout.split("\n").filter((l) => l !== "").map((l) => l.split("\t"));
}

// utime + stime of the process (its own) and cutime + cstime (its children's that it has
// waited for), in seconds, and its parent.
function procTimes(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(f[1]), self: (Number(f[11]) + Number(f[12])) / USER_HZ, reaped: (Number(f[13]) + Number(f[14])) / USER_HZ };
}

function pgKind(cmdline) {
  if (/\[local\]/.test(cmdline)) return "client backends";
  const m = /^postgres: (checkpointer|background writer|walwriter|autovacuum launcher|autovacuum worker|logical replication launcher|archiver|walsender|startup)/.exec(cmdline);
  return m ? m[1] : "other";
}

// CPU seconds used so far by the PostgreSQL server: the postmaster, every live process whose
// parent it is (all server processes are its children), and the children it has reaped
// already (its cutime + cstime: autovacuum workers and backends that exited).
function pgCpu() {
  const out = { total: 0, kinds: {} };
  const add = (k, v) => {
    out.kinds[k] = (out.kinds[k] || 0) + v;
    out.total += v;
  };
  const pm = procTimes(pg.postmaster);
  add("postmaster", pm.self);
  add("exited (reaped by the postmaster)", pm.reaped);
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const t = procTimes(e);
      if (t.ppid !== pg.postmaster) continue;
      add(pgKind(fs.readFileSync(`/proc/${e}/cmdline`, "utf8").replace(/\0/g, " ").trim()), t.self);
    } catch {} // it exited meanwhile: the postmaster's reaped time has it
  }
  return out;
}

const PG_STAT_COLUMNS = ["xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched",
  "tup_returned", "blks_read", "blks_hit", "wal_records", "wal_fpi", "wal_bytes", "wal_write", "wal_sync"];

// The database's cumulative statistics and the server's WAL statistics (pg_stat_wal covers
// the whole server; nothing else runs on it).
async function pgStats(db) {
  const [row] = await psql(`SELECT ${PG_STAT_COLUMNS.slice(0, 9).map((c) => `d.${c}`).join(", ")}, ${PG_STAT_COLUMNS.slice(9).map((c) => `w.${c}`).join(", ")} FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = '${db}'`);
  return Object.fromEntries(PG_STAT_COLUMNS.map((c, i) => [c, Number(row[i])]));
}

// A backend sends its statistics when it exits: once herald is stopped, wait until its
// backends are gone (at most 10 s).
async function pgBackendsGone(db) {
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    const [[n]] = await psql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${db}'`);
    if (Number(n) === 0) return;
    await sleep(50);
  }
}

// Per table: rows written (inserted, updated, of which HOT, deleted), the table's index count,
// and how it was read (sequential scans and the rows they read, index scans).
async function pgTableStats(db) {
  const rows = await psql("SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, (SELECT count(*) FROM pg_index i WHERE i.indrelid = s.relid), seq_scan, seq_tup_read, coalesce(idx_scan, 0) FROM pg_stat_user_tables s WHERE n_tup_ins + n_tup_upd + n_tup_del + seq_scan + coalesce(idx_scan, 0) > 0 ORDER BY n_tup_ins + n_tup_upd + n_tup_del DESC", db);
  return rows.map(([table, ins, upd, hot, del, indexes, seqScan, seqRead, idxScan]) => ({ table, ins: Number(ins), upd: Number(upd), hot: Number(hot), del: Number(del), indexes: Number(indexes), seqScan: Number(seqScan), seqRead: Number(seqRead), idxScan: Number(idxScan) }));
}

// A new database for one run, with the --pg-setting settings (ALTER DATABASE ... SET: every
// connection herald makes to it starts with them).
let pgDatabaseSettings = [];
async function pgCreate() {
  const db = `herald_bench_${++pgSeq}`;
  const quote = (v) => `'${v.replace(/'/g, "''")}'`;
  await psql([`CREATE DATABASE ${db}`, ...pgDatabaseSettings.map(([k, v]) => `ALTER DATABASE ${db} SET ${k} = ${quote(v)}`)]);
  return db;
}

// Drops the database and checkpoints, so that the next scenario (SQLite's too) does not share
// the disk with this one's dirty pages being written out.
async function pgDrop(db) {
  await psql([`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`, "CHECKPOINT"]);
}

// Loads pg_stat_statements (a restart: shared_preload_libraries), for the statement profile.
async function pgEnableStatements() {
  await psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
  const r = spawnSync(PG_SCRIPT, ["restart", pg.dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`restarting PostgreSQL: ${(r.stderr || "").trim()}`);
  pg.postmaster = postmasterPid(pg.dir);
  await psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
}

// Every statement run on `db` since the last reset: calls, rows, execution time (ms).
async function pgStatements(db) {
  const rows = await psql(`SELECT s.calls, s.rows, s.total_exec_time, regexp_replace(s.query, '\\s+', ' ', 'g') FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '${db}' ORDER BY s.calls DESC`);
  return rows.map(([calls, rws, ms, query]) => ({ calls: Number(calls), rows: Number(rws), ms: Number(ms), query }));
}

// The filesystem a path is on: "ext4 /dev/vda (mounted on /)".
function filesystemOf(p) {
  const r = spawnSync("df", ["-T", "-P", p], { encoding: "utf8" });
  const line = (r.stdout || "").trim().split("\n")[1];
  if (!line) return { type: "unknown", text: "unknown" };
  const f = line.split(/\s+/);
  return { type: f[1], source: f[0], mount: f[6], text: `${f[1]} ${f[0]} (mounted on ${f[6]})` };
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

// herald on PostgreSQL: `n` nodes (started one after the other) on a fresh database of the
// bench's server. Resolves with { nodes, db }.
async function startPgNodes(dir, n) {
  const db = await pgCreate();
  const nodes = [];
  for (let i = 0; i < n; i++) nodes.push(await startHerald(dir, {}, { db: pgUriFor(db), name: `herald-${i + 1}` }));
  return { nodes, db };
}

// The same end-to-end run as endToEnd's empty queue, on PostgreSQL with `n` nodes (publishers
// split across their APIs), measuring PostgreSQL's CPU too, and, over the whole run, what the
// database counted (commits, rows, WAL) per delivery. With `statements`, pg_stat_statements
// (loaded already) is reset after the setup and read at the end.
async function pgEndToEnd(work, o, { nodes: n, connections, statements = false }) {
  const dir = path.join(work, `pg${n}-${connections}-${Date.now()}`);
  fs.mkdirSync(dir, { recursive: true });
  const nginx = await startNginx(dir);
  const urls = [];
  for (let i = 0; i < o.endpoints; i++) urls.push(`${nginx.url}/ep${i}`);
  const { nodes, db } = await startPgNodes(dir, n);
  const appId = await setupApp(nodes[0], urls);
  if (statements) await psql("SELECT pg_stat_statements_reset()");
  const s0 = await pgStats(db);
  const r = await measureDeliveries(nodes, appId, o, connections, (m) => m.success, nginx.proc.pid, true);
  const after = await metricsAll(nodes);
  r.failedAttempts = after.httpError + after.networkError;
  r.memoryAfter = memory(nodes[0].proc.pid);
  await Promise.all(nodes.map((h) => stop(h.proc)));
  await stop(nginx.proc);
  await pgBackendsGone(db);
  const s1 = await pgStats(db);
  // Over the whole run (warm-up, window, and the last results recorded as herald stopped):
  // the database's counters per successful delivery.
  r.runDeliveries = after.success;
  r.perDelivery = Object.fromEntries(PG_STAT_COLUMNS.map((c) => [c, after.success > 0 ? (s1[c] - s0[c]) / after.success : NaN]));
  r.tables = await pgTableStats(db);
  if (statements) r.statements = await pgStatements(db);
  await pgDrop(db);
  return r;
}

// Accept-to-receive latency at a fixed rate: accept times from the publisher, receive times
// from nginx's access log ($msec, millisecond resolution). `pgNodes` > 0: herald on PostgreSQL
// with that many nodes, the publisher's rate and connections split across their APIs.
async function latency(work, o, { pgNodes = 0 } = {}) {
  const dir = path.join(work, `latency-${pgNodes ? `pg${pgNodes}-` : ""}${Date.now()}`);
  fs.mkdirSync(dir, { recursive: true });
  const accessLog = path.join(dir, "access.log");
  const nginx = await startNginx(dir, { accessLog });
  const { nodes: hs, db } = pgNodes ? await startPgNodes(dir, pgNodes) : { nodes: [await startHerald(dir)], db: null };
  const urls = [];
  for (let i = 0; i < o.endpoints; i++) urls.push(`${nginx.url}/ep${i}`);
  const appId = await setupApp(hs[0], urls);
  const acceptLog = path.join(dir, "accepted.txt");
  const pub = await publishAll(hs, appId, { seconds: o.duration, connections: 16, rate: o.rate, acceptLog });
  // Let the last deliveries land and nginx flush its log: wait while the queue drains (a herald
  // that fell behind the rate may take a while), giving up after 30 s without progress or 300 s
  // in all.
  const waitStart = Date.now();
  let pendingAfterWait = 0;
  for (let least = Infinity, progressAt = Date.now(); ; await sleep(100)) {
    pendingAfterWait = (await metrics(hs[0])).pending;
    if (pendingAfterWait === 0) break;
    if (pendingAfterWait < least) [least, progressAt] = [pendingAfterWait, Date.now()];
    if (Date.now() - progressAt > 30000 || Date.now() - waitStart > 300000) break;
  }
  const drainSeconds = (Date.now() - waitStart) / 1000;
  await Promise.all(hs.map((h) => stop(h.proc)));
  await stop(nginx.proc, "SIGQUIT");
  if (db) {
    await pgBackendsGone(db);
    await pgDrop(db);
  }
  const accepted = new Map();
  const acceptLogs = hs.length === 1 ? [acceptLog] : hs.map((_, i) => `${acceptLog}.${i}`).filter((f) => fs.existsSync(f));
  for (const line of acceptLogs.flatMap((f) => fs.readFileSync(f, "utf8").split("\n"))) {
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
    pendingAfterWait,
    drainSeconds,
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

// When the queue took long to drain after the latency run, or never did.
function latencyNote(l) {
  if (l.pendingAfterWait > 0) return `; ${f0(l.pendingAfterWait)} still pending after waiting ${f0(l.drainSeconds)} s, left out of the percentiles`;
  if (l.drainSeconds > 5) return `; the queue took ${f0(l.drainSeconds)} s to drain after the publisher stopped`;
  return "";
}

// The PostgreSQL and baseline lines of the targets table, and what they are compared with.
function pgTargets(o, r) {
  const rows = [];
  const out = { rows };
  const b = r.baseline;
  if (b) {
    // "No worse" within this run's own spread between repeats: the noise of the figure.
    const xs = r.e2es.map((x) => x.deliveriesPerSec);
    const spread = Math.max(...xs) - Math.min(...xs);
    out.baselineRatio = r.e2eMedian / b.deliveriesPerSec;
    const ok = r.e2eMedian >= b.deliveriesPerSec - spread;
    rows.push(`| SQLite end to end against the previous report (${path.basename(b.file)}, written ${b.written}${b.smoke ? ", a smoke run" : ""}) | ${f0(r.e2eMedian)} deliveries/s vs ${f0(b.deliveriesPerSec)} then (spread between this run's repeats: ${f0(spread)}) | no worse | ${f2(out.baselineRatio)}: ${verdict(ok)} |`);
  }
  if (!r.pg) return out;
  const { one, two } = r.pg;
  const repeats = (x) => x.bests.map((e) => `${f0(e.deliveriesPerSec)} at ${e.connections} conn.${e.sustained ? "" : " (behind)"}`).join(", ");
  out.pgRatio = one.median / r.e2eMedian;
  out.cpuRatio = two.cpu.total / one.cpu.total;
  const lat = (l) => `p50 ${f1(l.p50)} ms, p99 ${f1(l.p99)} ms, max ${f1(l.max)} ms (${f0(l.deliveries)} of ${f0(l.expected)} deliveries seen${latencyNote(l)})`;
  const latOk = (l) => l.p99 <= 20 && l.deliveries >= l.expected;
  const cpu = (x) => `herald ${f1(x.cpu.herald)} + PostgreSQL ${f1(x.cpu.pg)} = ${f1(x.cpu.total)} µs`;
  rows.push(`| PostgreSQL, one node, end to end, sustained | ${f0(one.median)} deliveries/s (repeats: ${repeats(one)}) vs ${f0(r.e2eMedian)} on SQLite | ≥ 0.5 × SQLite | ${f2(out.pgRatio)}: ${verdict(out.pgRatio >= 0.5)} |`);
  rows.push(`| PostgreSQL, two nodes on one database, end to end, sustained | ${f0(two.median)} deliveries/s (repeats: ${repeats(two)}) | | ${f2(two.median / one.median)} × one node |`);
  rows.push(`| PostgreSQL, one node: accept → receive at ${f0(o.rate)} messages/s | ${lat(one.latency)} | p99 ≤ 20 ms | ${verdict(latOk(one.latency))} |`);
  rows.push(`| PostgreSQL, two nodes: accept → receive at ${f0(o.rate)} messages/s, published through both | ${lat(two.latency)} | p99 ≤ 20 ms | ${verdict(latOk(two.latency))} |`);
  rows.push(`| PostgreSQL: CPU per delivery, herald's processes + PostgreSQL's (medians of the repeats' sustained runs) | one node: ${cpu(one)}; two nodes: ${cpu(two)} | two nodes ≤ 1.15 × one | ${f2(out.cpuRatio)}: ${verdict(out.cpuRatio <= 1.15)} |`);
  rows.push(`| PostgreSQL: peak memory (RSS) of a node | one node ${f0(one.peakRssMiB)} MiB; two nodes ${f0(two.peakRssMiB)} MiB (the larger node) | bounded | |`);
  return out;
}

const mdCell = (s) => String(s).replace(/\|/g, "\\|");

function pgSection(o, r) {
  const lines = [];
  const p = r.pg;
  if (!p) return lines;
  const s = p.settings;
  lines.push("## PostgreSQL");
  lines.push("");
  lines.push(`herald on PostgreSQL ${p.version}, a throwaway server the benchmark starts for itself (\`scripts/pg-test-server.sh\` with \`HERALD_PG_DURABLE=1\`), on a Unix socket only, durable as SQLite is: \`fsync=${s.fsync}\`, \`synchronous_commit=${s.synchronous_commit}\`, \`full_page_writes=${s.full_page_writes}\` (read back from the server), \`wal_sync_method=${s.wal_sync_method}\`, \`shared_buffers=${s.shared_buffers}\`, \`max_wal_size=${s.max_wal_size}\`, \`checkpoint_timeout=${s.checkpoint_timeout}\`. Its data directory is on ${p.dataFs.text}; the SQLite files of the other scenarios are on ${p.sqliteFs.text}${p.dataFs.type === p.sqliteFs.type && p.dataFs.source === p.sqliteFs.source ? " (the same filesystem)" : " (**a different filesystem**)"}.`);
  lines.push("");
  if (p.databaseSettings.length) {
    lines.push(`**Not PostgreSQL's defaults**: every run's database was given ${p.databaseSettings.map(([k, v]) => `\`${k} = ${v}\``).join(", ")} (\`--pg-setting\`).`);
    lines.push("");
  }
  lines.push(`Each run starts herald on a new database (dropped, and the server checkpointed, after the run), with the same endpoints, nginx and publisher as on SQLite. With two nodes, both serve the API and share the queue; the publisher's connections (and, in the latency run, its rate) are split between their APIs. herald runs with its defaults (13 connections per node; message creation commits with \`synchronous_commit\` on, so a 202 waits for the WAL flush; the scheduler's commits do not wait). *CPU per delivery* is measured over the same window as the deliveries: herald's is the threads of every node, PostgreSQL's the user + system time of every server process (the postmaster's children, and the ones it reaped meanwhile), from /proc.`);
  lines.push("");
  lines.push("Every run (deliveries/s recorded; messages/s accepted; deliveries pending at the end; CPU µs per delivery, herald + PostgreSQL):");
  lines.push("");
  lines.push(`| repeat | nodes | ${o.pgConnections.map((c) => `${c} connections`).join(" | ")} |`);
  lines.push(`|---|---|${o.pgConnections.map(() => "---").join("|")}|`);
  for (const [key, n] of [["one", 1], ["two", 2]]) {
    p[key].sweeps.forEach((sw, i) => lines.push(`| ${i + 1} | ${n} | ${sw.map((e) => `${f0(e.deliveriesPerSec)}; ${f0(e.acceptedPerSec)}; ${f0(e.pendingAtEnd)}${flag(e)}; ${f1(e.cpu.herald)} + ${f1(e.cpu.pg)}`).join(" | ")} |`));
  }
  lines.push("");
  const best = (x) => x.bests.reduce((a, b) => (b.deliveriesPerSec > a.deliveriesPerSec ? b : a));
  const b1 = best(p.one);
  const b2 = best(p.two);
  lines.push(`### Where the cores go (the best runs: one node ${f0(b1.deliveriesPerSec)} deliveries/s at ${b1.connections} connections, two nodes ${f0(b2.deliveriesPerSec)} at ${b2.connections})`);
  lines.push("");
  lines.push("herald's threads are added up over the nodes; PostgreSQL's *client backends* are the server processes of herald's connections.");
  lines.push("");
  lines.push("| process or thread | one node: cores | µs per delivery | two nodes: cores | µs per delivery |");
  lines.push("|---|---|---|---|---|");
  const us = (c, e) => f1((c * 1e6) / e.deliveriesPerSec);
  const row = (name, c1, c2) => lines.push(`| ${name} | ${f2(c1)} | ${us(c1, b1)} | ${f2(c2)} | ${us(c2, b2)} |`);
  const heraldNames = [...new Set([...Object.keys(b1.cores), ...Object.keys(b2.cores)])].filter((k) => k !== "nginx");
  heraldNames.sort((a, b) => (b2.cores[b] || 0) + (b1.cores[b] || 0) - (b2.cores[a] || 0) - (b1.cores[a] || 0));
  for (const k of heraldNames) if ((b1.cores[k] || 0) + (b2.cores[k] || 0) >= 0.005) row(k, b1.cores[k] || 0, b2.cores[k] || 0);
  row("**herald in all**", b1.cpu.heraldCores, b2.cpu.heraldCores);
  const pgNames = [...new Set([...Object.keys(b1.pgCores), ...Object.keys(b2.pgCores)])];
  pgNames.sort((a, b) => (b2.pgCores[b] || 0) + (b1.pgCores[b] || 0) - (b2.pgCores[a] || 0) - (b1.pgCores[a] || 0));
  for (const k of pgNames) if ((b1.pgCores[k] || 0) + (b2.pgCores[k] || 0) >= 0.005) row(`postgres: ${k}`, b1.pgCores[k] || 0, b2.pgCores[k] || 0);
  row("**PostgreSQL in all**", b1.cpu.pgCores, b2.cpu.pgCores);
  row("**herald + PostgreSQL**", b1.cpu.heraldCores + b1.cpu.pgCores, b2.cpu.heraldCores + b2.cpu.pgCores);
  row("nginx (the receiver)", b1.cores.nginx || 0, b2.cores.nginx || 0);
  lines.push("");
  lines.push("### What the database does per delivery (the same runs, counted over the whole run)");
  lines.push("");
  lines.push(`From \`pg_stat_database\` (this run's database) and \`pg_stat_wal\` (the server), read before the publisher started and after herald stopped, divided by the successful deliveries (${f0(b1.runDeliveries)} and ${f0(b2.runDeliveries)}). A commit is a round trip at least, and with \`synchronous_commit\` on a WAL flush to wait for; WAL syncs are the fsyncs (\`fdatasync\`) PostgreSQL made.`);
  lines.push("");
  lines.push("| per delivery | one node | two nodes |");
  lines.push("|---|---|---|");
  const names = {
    xact_commit: "transactions committed (incl. single statements)",
    xact_rollback: "transactions rolled back",
    tup_inserted: "rows inserted",
    tup_updated: "rows updated",
    tup_deleted: "rows deleted",
    tup_fetched: "rows fetched (by index)",
    tup_returned: "rows returned (scanned)",
    blks_hit: "buffer hits",
    blks_read: "blocks read (not in shared buffers)",
    wal_records: "WAL records",
    wal_fpi: "WAL full-page images",
    wal_bytes: "WAL bytes",
    wal_write: "WAL writes",
    wal_sync: "WAL syncs (fsyncs)",
  };
  const f3 = (x) => (Number.isFinite(x) ? (Math.abs(x) >= 100 ? f0(x) : x.toFixed(3)) : "n/a");
  for (const [k, label] of Object.entries(names)) lines.push(`| ${label} | ${f3(b1.perDelivery[k])} | ${f3(b2.perDelivery[k])} |`);
  lines.push("");
  lines.push("Rows written and read per delivery, by table (`pg_stat_user_tables`; a HOT update rewrites the row in its page and touches no index, any other update adds an entry to every index of the table; a sequential scan reads the whole table):");
  lines.push("");
  lines.push("| table | indexes | one node: inserted / updated (HOT) / deleted | sequential scans / rows they read / index scans | two nodes: inserted / updated (HOT) / deleted | sequential scans / rows they read / index scans |");
  lines.push("|---|---|---|---|---|---|");
  const tables = [...new Set([...b1.tables, ...b2.tables].map((t) => t.table))];
  const cell = (e, name) => {
    const t = e.tables.find((x) => x.table === name);
    if (!t) return "0 | 0";
    const d = e.runDeliveries;
    return `${f3(t.ins / d)} / ${f3(t.upd / d)} (${f3(t.hot / d)}) / ${f3(t.del / d)} | ${f3(t.seqScan / d)} / ${f3(t.seqRead / d)} / ${f3(t.idxScan / d)}`;
  };
  for (const t of tables) {
    const idx = ([...b1.tables, ...b2.tables].find((x) => x.table === t) || {}).indexes;
    lines.push(`| ${t} | ${idx ?? ""} | ${cell(b1, t)} | ${cell(b2, t)} |`);
  }
  lines.push("");
  if (p.statements || p.statementsError) {
    lines.push("### Statements (pg_stat_statements, separate runs)");
    lines.push("");
    if (p.statementsError) lines.push(`The statement profile failed: ${p.statementsError}`);
    else {
      const s1 = p.statements.one;
      const s2 = p.statements.two;
      const total = (x) => x.statements.reduce((a, q) => a + q.calls, 0);
      const ms = (x) => x.statements.reduce((a, q) => a + q.ms, 0);
      lines.push(`After the measured runs, the server is restarted with \`pg_stat_statements\` loaded and one more run is made with one node (${s1.connections} connections: ${f0(s1.deliveriesPerSec)} deliveries/s) and with two (${s2.connections} connections: ${f0(s2.deliveriesPerSec)} deliveries/s); their figures are not the ones above (the extension costs a little per statement). Every statement herald sent, \`BEGIN\`, \`COMMIT\` and savepoints included: ${f2(total(s1) / s1.runDeliveries)} statements per delivery with one node, ${f2(total(s2) / s2.runDeliveries)} with two. Execution time is the server's own (a \`COMMIT\` includes its WAL flush); the share is of all statements' execution time.`);
      lines.push("");
      lines.push("| statement | one node: calls per delivery | rows per delivery | mean µs | share of time | two nodes: calls per delivery | rows per delivery | mean µs | share of time |");
      lines.push("|---|---|---|---|---|---|---|---|---|");
      const byQuery = new Map();
      for (const [key, x] of [["one", s1], ["two", s2]]) for (const q of x.statements) {
        const e = byQuery.get(q.query) || { query: q.query };
        e[key] = q;
        byQuery.set(q.query, e);
      }
      const ordered = [...byQuery.values()].sort((a, b) => (b.one?.calls || 0) / s1.runDeliveries + (b.two?.calls || 0) / s2.runDeliveries - (a.one?.calls || 0) / s1.runDeliveries - (a.two?.calls || 0) / s2.runDeliveries);
      // The most frequent (round trips), and any that takes 1 % of the time or more.
      const big = (e) => (e.one && e.one.ms >= 0.01 * ms(s1)) || (e.two && e.two.ms >= 0.01 * ms(s2));
      const shown = ordered.filter((e, i) => i < 15 || big(e));
      const c = (q, x) => (q ? f3(q.calls / x.runDeliveries) : "0");
      const rowsPer = (q, x) => (q ? f3(q.rows / x.runDeliveries) : "0");
      const mean = (q) => (q && q.calls ? f1((q.ms * 1000) / q.calls) : "");
      const share = (q, x) => (q ? `${f1((100 * q.ms) / ms(x))} %` : "");
      for (const e of shown) {
        const text = e.query.length > 150 ? `${e.query.slice(0, 147)}...` : e.query;
        lines.push(`| \`${mdCell(text)}\` | ${c(e.one, s1)} | ${rowsPer(e.one, s1)} | ${mean(e.one)} | ${share(e.one, s1)} | ${c(e.two, s2)} | ${rowsPer(e.two, s2)} | ${mean(e.two)} | ${share(e.two, s2)} |`);
      }
      if (ordered.length > shown.length) lines.push(`| (${ordered.length - shown.length} more, fewer calls and under 1 % of the time) | | | | | | | | |`);
    }
    lines.push("");
  }
  return lines;
}

function report(o, m, r, chartName) {
  const ratio = r.e2eMedian / r.ceilingMedian;
  const backlogRatio = r.backlog.deliveriesPerSec / r.e2eSuccessMedian;
  const healthyBase = r.e2eSuccessMedian * ((o.endpoints - r.dead) / o.endpoints);
  const isolation = r.isolation.deliveriesPerSec / healthyBase;
  const cmd = o.smoke ? "node bench/run.mjs --smoke" : "bench/run.sh";
  const pgt = pgTargets(o, r);
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
  if (r.pg) lines.push(`| PostgreSQL | ${r.pg.version}, a throwaway durable server on a Unix socket (see "PostgreSQL") |`);
  lines.push("");
  lines.push("## Settings");
  lines.push("");
  lines.push(`- ${o.endpoints} endpoints on one app, every message fanned out to all of them; payload about 256 bytes.`);
  lines.push(`- Throughput windows of ${o.duration} s (the first ${Math.min(3, o.duration * 0.25)} s are warm-up and not counted), ${o.repeats} repeat(s), interleaved ceiling / herald; medians quoted.`);
  lines.push(`- Publisher: herald_loadgen at full speed over ${o.connections.join(", ")} keep-alive connections (one run each per repeat); a run is *sustained* when herald kept up (less than a second's worth of deliveries pending at its end), and a repeat's figure is its best sustained run. The backlog and dead-endpoint scenarios use ${r.connections} connections, the size most often best, and compare with the empty-queue run of that size.`);
  lines.push(`- wrk: 1 thread, ${Math.max(...o.connections)} connections, the same body and signature headers herald sends.`);
  lines.push(`- herald with its defaults (SQLite WAL, \`synchronous=FULL\` for accepted messages, 512 in flight, 32 per endpoint, 15 s request timeout).`);
  if (r.pg) lines.push(`- PostgreSQL runs: the same sweep (over ${o.pgConnections.join(", ")} connections) with one node and with two nodes on one database, in every repeat after SQLite's; latency, and a statement profile, once each. See "PostgreSQL" below.${o.pgSettings.length ? ` Database settings changed from PostgreSQL's defaults: ${o.pgSettings.map(([k, v]) => `\`${k} = ${v}\``).join(", ")}.` : ""}`);
  else lines.push("- PostgreSQL: not run (`--no-postgres`).");
  lines.push("");
  lines.push("## Figures against the targets");
  lines.push("");
  lines.push("| measure | result | target | |");
  lines.push("|---|---|---|---|");
  lines.push(`| wrk ceiling (POST to nginx) | ${f0(r.ceilingMedian)} req/s (runs: ${r.ceilings.map(f0).join(", ")}) | | |`);
  lines.push(`| herald end to end, sustained: accepted, signed, delivered, attempt recorded | ${f0(r.e2eMedian)} deliveries/s (repeats: ${r.e2es.map((x) => `${f0(x.deliveriesPerSec)} at ${x.connections} conn.${x.sustained ? "" : " (behind)"}`).join(", ")}) | | |`);
  lines.push(`| ratio to the ceiling | ${f2(ratio)} | ≥ 0.30 | ${verdict(ratio >= 0.3)} |`);
  lines.push(`| accept → receive at ${f0(o.rate)} messages/s (${f0(o.rate * o.endpoints)} deliveries/s) | p50 ${f1(r.latency.p50)} ms, p99 ${f1(r.latency.p99)} ms, max ${f1(r.latency.max)} ms (${f0(r.latency.deliveries)} of ${f0(r.latency.expected)} deliveries seen${latencyNote(r.latency)}) | p99 ≤ 20 ms | ${verdict(r.latency.p99 <= 20 && r.latency.deliveries >= r.latency.expected)} |`);
  lines.push(`| throughput with a ${f0(o.backlog)}-delivery backlog (due at once) | ${f0(r.backlog.deliveriesPerSec)} deliveries/s vs ${f0(r.e2eSuccessMedian)} with an empty queue (seeded in ${f1(r.backlog.seeded?.seconds)} s) | ≥ 0.8 × empty | ${f2(backlogRatio)}: ${verdict(backlogRatio >= 0.8)} |`);
  lines.push(`| healthy endpoints with ${r.dead} of ${o.endpoints} never answering | ${f0(r.isolation.deliveriesPerSec)} successful deliveries/s vs ${f0(healthyBase)} to the same endpoints with none failing | ≥ 0.9 | ${f2(isolation)}: ${verdict(isolation >= 0.9)} |`);
  lines.push(`| peak memory (RSS) | empty queue ${f0(median(r.e2es.map((x) => x.peakRssMiB)))} MiB; ${f0(o.backlog)} backlog ${f0(r.backlog.peakRssMiB)} MiB; dead endpoints ${f0(r.isolation.peakRssMiB)} MiB | bounded | |`);
  lines.push(...pgt.rows);
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
  r.sweeps.forEach((sw, i) => lines.push(`| ${i + 1} | ${sw.map((e) => `${f0(e.deliveriesPerSec)}; ${f0(e.acceptedPerSec)}; ${f0(e.pendingAtEnd)}${flag(e)}`).join(" | ")} |`));
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
  lines.push(...pgSection(o, r));
  lines.push("## Reproduce");
  lines.push("");
  lines.push("```sh");
  lines.push("bench/run.sh            # installs nginx, wrk and perf if missing, builds, runs, writes this file");
  lines.push("bench/run.sh --duration 30 --repeats 5 --endpoints 10 --backlog 1000000");
  lines.push("bench/run.sh --no-postgres   # SQLite only");
  lines.push("```");
  lines.push("");
  return { text: lines.join("\n"), ratio, backlogRatio, isolation, pgRatio: pgt.pgRatio, cpuRatio: pgt.cpuRatio };
}

// ---------------------------------------------------------------------------------------------

// One run, as the progress log says it.
function runSummary(e) {
  return `${f0(e.deliveriesPerSec)} deliveries/s, ${f0(e.acceptedPerSec)} messages/s accepted, ${f0(e.pendingAtEnd)} pending at the end${e.sustained ? "" : " (not kept up)"}${e.unmeasured ? " (unmeasured: /metrics unanswered during the load)" : ""}`;
}

// How a run is marked in the tables.
function flag(e) {
  if (e.unmeasured) return " (**unmeasured**: /metrics went unanswered during the load)";
  return e.sustained ? "" : " (behind)";
}

// A repeat's figure: its best sustained run (or its best run, if none kept up).
function bestOf(sweep) {
  const measured = sweep.filter((e) => !e.unmeasured);
  const kept = measured.filter((e) => e.sustained);
  const pool = kept.length ? kept : measured.length ? measured : sweep;
  return pool.reduce((a, b) => (b.deliveriesPerSec > a.deliveriesPerSec ? b : a));
}

// The publisher size most often best.
function mostOftenBest(bests) {
  const counts = new Map();
  for (const e of bests) counts.set(e.connections, (counts.get(e.connections) || 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
}

// SQLite's sustained figure in an earlier report (the one this run replaces, or --baseline).
function readBaseline(file) {
  try {
    const text = fs.readFileSync(file, "utf8");
    const m = /herald end to end, sustained[^|]*\| ([\d,]+) deliveries\/s/.exec(text);
    if (!m) return null;
    const w = /^Written by `[^`]*` on (\S+)\./m.exec(text);
    return { file, deliveriesPerSec: Number(m[1].replace(/,/g, "")), written: w ? w[1] : "unknown date", smoke: /smoke run/.test(text.split("\n")[0]) };
  } catch {
    return null;
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  for (const bin of [HERALD, LOADGEN, SEED]) {
    if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: build first (scripts/build.sh)`);
  }
  if (o.postgres && !pgInstalled()) {
    throw new Error("PostgreSQL's server is not installed (scripts/install-deps.sh bench installs it); --no-postgres skips the PostgreSQL runs");
  }
  const baseline = readBaseline(o.baseline);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "herald-bench-"));
  const log = (s) => console.log(`bench: ${s}`);
  const m = machine();
  log(`${m.cpu}, ${m.cores} cores; work dir ${work}`);
  const r = { ceilings: [], e2es: [], sweeps: [], dead: Math.max(1, Math.round(o.endpoints / 10)), baseline };
  if (o.postgres) {
    pgStart(work);
    pgDatabaseSettings = o.pgSettings;
    const settings = await psql(["fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "shared_buffers", "max_wal_size", "checkpoint_timeout"].map((k) => `SHOW ${k}`));
    r.pg = {
      version: version(pgServerBin("postgres"), ["-V"], /\d+\.\d+/),
      settings: Object.fromEntries(["fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "shared_buffers", "max_wal_size", "checkpoint_timeout"].map((k, i) => [k, settings[i][0]])),
      dataDir: path.join(pg.dir, "data"),
      dataFs: filesystemOf(path.join(pg.dir, "data")),
      databaseSettings: o.pgSettings,
      sqliteFs: filesystemOf(work),
      one: { sweeps: [], bests: [] },
      two: { sweeps: [], bests: [] },
    };
    if (r.pg.settings.fsync !== "on" || r.pg.settings.synchronous_commit !== "on" || r.pg.settings.full_page_writes !== "on") {
      throw new Error(`the bench's PostgreSQL server is not durable: ${JSON.stringify(r.pg.settings)}`);
    }
    log(`PostgreSQL ${r.pg.version} in ${r.pg.dataDir} (${r.pg.dataFs.text}); SQLite files in ${work} (${r.pg.sqliteFs.text})`);
    if (r.pg.dataFs.type !== r.pg.sqliteFs.type) log(`warning: PostgreSQL's data and SQLite's files are on different kinds of filesystem`);
  }
  // Each repeat: the ceiling, then herald against publishers of each size, on SQLite, then on
  // PostgreSQL with one node and with two; each repeat's figure is its best sustained run.
  for (let i = 0; i < o.repeats; i++) {
    r.ceilings.push(await ceiling(work, o));
    log(`ceiling run ${i + 1}: ${f0(r.ceilings.at(-1))} req/s`);
    const sweep = [];
    for (const c of o.connections) {
      const e = await endToEnd(work, o, { connections: c });
      sweep.push(e);
      log(`end-to-end run ${i + 1}, ${c} connections: ${runSummary(e)}`);
    }
    r.sweeps.push(sweep);
    r.e2es.push(bestOf(sweep));
    if (!o.postgres) continue;
    for (const [key, nodes] of [["one", 1], ["two", 2]]) {
      const pgSweep = [];
      for (const c of o.pgConnections) {
        const e = await pgEndToEnd(work, o, { nodes, connections: c });
        pgSweep.push(e);
        log(`PostgreSQL, ${nodes} node${nodes > 1 ? "s" : ""}, run ${i + 1}, ${c} connections: ${runSummary(e)}; CPU µs/delivery herald ${f1(e.cpu.herald)} + PostgreSQL ${f1(e.cpu.pg)} = ${f1(e.cpu.total)}`);
      }
      r.pg[key].sweeps.push(pgSweep);
      r.pg[key].bests.push(bestOf(pgSweep));
    }
  }
  r.ceilingMedian = median(r.ceilings);
  r.e2eMedian = median(r.e2es.map((x) => x.deliveriesPerSec));
  // The publisher size most often best: the other scenarios use it.
  r.connections = mostOftenBest(r.e2es);
  r.e2eSuccessMedian = median(r.sweeps.map((sw) => sw.find((e) => e.connections === r.connections).deliveriesPerSec));
  if (o.postgres) {
    for (const key of ["one", "two"]) {
      const x = r.pg[key];
      x.median = median(x.bests.map((e) => e.deliveriesPerSec));
      x.connections = mostOftenBest(x.bests);
      x.cpu = Object.fromEntries(["herald", "pg", "total"].map((k) => [k, median(x.bests.map((e) => e.cpu[k]))]));
      x.peakRssMiB = median(x.bests.map((e) => e.peakRssMiB));
    }
  }
  if (o.profile && hasPerf()) {
    r.profile = (await endToEnd(work, o, { connections: r.connections, profile: true })).profile;
  }
  r.latency = await latency(work, o);
  log(`latency at ${o.rate}/s: p50 ${f1(r.latency.p50)} ms, p99 ${f1(r.latency.p99)} ms, max ${f1(r.latency.max)} ms`);
  if (o.postgres) {
    for (const [key, nodes] of [["one", 1], ["two", 2]]) {
      const l = (r.pg[key].latency = await latency(work, o, { pgNodes: nodes }));
      log(`PostgreSQL, ${nodes} node${nodes > 1 ? "s" : ""}, latency at ${o.rate}/s: p50 ${f1(l.p50)} ms, p99 ${f1(l.p99)} ms, max ${f1(l.max)} ms`);
    }
  }
  r.backlog = await endToEnd(work, o, { connections: r.connections, backlog: o.backlog });
  log(`with a ${f0(o.backlog)} backlog: ${f0(r.backlog.deliveriesPerSec)} deliveries/s`);
  r.isolation = await endToEnd(work, o, { connections: r.connections, deadEndpoints: r.dead });
  log(`with ${r.dead} dead endpoint(s): ${f0(r.isolation.deliveriesPerSec)} successful deliveries/s`);
  if (o.statements) {
    // Last: loading pg_stat_statements restarts the server, and it costs a little per statement.
    try {
      await pgEnableStatements();
      r.pg.statements = {};
      for (const [key, nodes] of [["one", 1], ["two", 2]]) {
        r.pg.statements[key] = await pgEndToEnd(work, o, { nodes, connections: r.pg[key].connections, statements: true });
      }
      log("statement profile on PostgreSQL taken");
    } catch (e) {
      r.pg.statementsError = String(e.message).split("\n")[0];
      log(`statement profile on PostgreSQL failed: ${r.pg.statementsError}`);
    }
  }

  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  const chartName = path.basename(o.out).replace(/\.md$/i, "") + "-latency.svg";
  const charted = latencyChart(r.latency.samples, path.join(path.dirname(o.out), chartName));
  const rep = report(o, m, r, charted ? chartName : null);
  const previous = fs.existsSync(o.out) ? fs.readFileSync(o.out, "utf8") : "";
  fs.writeFileSync(o.out, withSoakSection(rep.text, previous));
  log(`wrote ${path.relative(process.cwd(), o.out)}: ratio ${f2(rep.ratio)}, p99 ${f1(r.latency.p99)} ms, backlog ${f2(rep.backlogRatio)}, isolation ${f2(rep.isolation)}`);
  if (o.postgres) {
    log(`PostgreSQL: one node ${f0(r.pg.one.median)} deliveries/s (${f2(rep.pgRatio)} × SQLite), two nodes ${f0(r.pg.two.median)}; CPU per delivery two/one ${f2(rep.cpuRatio)}; p99 ${f1(r.pg.one.latency.p99)} / ${f1(r.pg.two.latency.p99)} ms`);
  }

  // Broken, not slow: a scenario that delivered nothing, lost a message, or got errors.
  const problems = [];
  if (!(r.ceilingMedian > 0)) problems.push("wrk measured nothing");
  const checked = [["end to end", r.e2es[0]], ["backlog", r.backlog], ["isolation", r.isolation]];
  const latencies = [["latency", r.latency]];
  if (o.postgres) {
    checked.push(["PostgreSQL one node", r.pg.one.sweeps[0][0]], ["PostgreSQL two nodes", r.pg.two.sweeps[0][0]]);
    latencies.push(["PostgreSQL one node latency", r.pg.one.latency], ["PostgreSQL two nodes latency", r.pg.two.latency]);
    if (r.pg.statementsError) problems.push(`PostgreSQL statement profile: ${r.pg.statementsError}`);
  }
  for (const [name, x] of checked) {
    if (!(x.deliveriesPerSec > 0)) problems.push(`${name}: no delivery recorded`);
    if (x.publishErrors > 0) problems.push(`${name}: ${x.publishErrors} publish errors`);
  }
  for (const [name, l] of latencies) {
    // Lost, not late: the queue drained and still some never arrived. (Late ones, still pending
    // when the wait gave up, are in the report.)
    if (l.deliveries < l.expected && l.pendingAfterWait === 0) problems.push(`${name}: ${l.expected - l.deliveries} accepted deliveries never reached nginx`);
  }
  pgStopSync(); // its log goes to the work dir, kept if something failed
  if (problems.length) {
    console.error(`bench: FAILED (files kept in ${work})\n  ${problems.join("\n  ")}`);
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
