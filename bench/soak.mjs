// herald's soak: one herald on SQLite for a long while (30 minutes by default) at half the rate
// it sustains, with one endpoint in ten failing (500) and one slow (answering after 20 ms), the
// rest nginx answering 204. Every minute it records herald's RSS, its open file descriptors,
// the size of its database files, the deliveries made per second and the deliveries pending.
// Writes bench/RESULTS-soak.md (or --out) with a chart beside it, and puts the summary in
// bench/RESULTS.md's soak section. See bench/README.md.
//
//   node bench/soak.mjs [--minutes N] [--endpoints N] [--rate N] [--retention DURATION] [--out FILE]
//                       [--smoke]
//
// --smoke: 15 s at 50 messages/s with a sample every 5 s, written to bench/out/smoke/: a check
// that the soak still runs (it fails only when nothing was delivered).
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";

import {
  ROOT,
  SOAK_BEGIN,
  SOAK_END,
  freePort,
  killChildren,
  memory,
  metrics,
  publish,
  setupApp,
  sleep,
  startHerald,
  startNginx,
  stop,
} from "./lib.mjs";

process.on("exit", () => killChildren());
for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => process.exit(130));

function parseArgs(argv) {
  const o = { minutes: 30, endpoints: 10, rate: 0, retention: "5m", out: null, smoke: false, sampleS: 60 };
  for (let i = 0; i < argv.length; i++) {
    const next = () => argv[++i];
    const a = argv[i];
    if (a === "--minutes") o.minutes = Number(next());
    else if (a === "--endpoints") o.endpoints = Number(next());
    else if (a === "--rate") o.rate = Number(next());
    else if (a === "--retention") o.retention = next();
    else if (a === "--out") o.out = path.resolve(next());
    else if (a === "--smoke") o.smoke = true;
    else throw new Error(`soak: unknown option ${a}`);
  }
  if (!(o.minutes > 0) || !(o.endpoints >= 3)) throw new Error("soak: --minutes > 0 and --endpoints >= 3");
  if (o.smoke) Object.assign(o, { minutes: 0.25, rate: o.rate || 50, sampleS: 5 });
  o.out = o.out ?? path.join(ROOT, o.smoke ? "bench/out/smoke/RESULTS-soak.md" : "bench/RESULTS-soak.md");
  return o;
}

const log = (s) => console.error(`soak: ${s}`);

// The slow endpoint's answer time: ten times nginx's and more, yet well within what 32 requests
// at once (herald's per-endpoint default) carry at the soak's rate, about 1,500 a second, so
// that its backlog does not grow by design (at 50 ms it would carry about 600 a second).
const SLOW_MS = 20;
// A short schedule, so that the failing endpoint's deliveries end (fail) within the run and
// what is pending levels off: it would otherwise grow for the default schedule's 27 hours.
const RETRY_SCHEDULE = "5s,30s,1m";

// A receiver of our own for the endpoints nginx cannot play: 500 at once, or 204 after SLOW_MS.
async function startOddReceiver() {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      if (req.url.startsWith("/fail")) res.writeHead(500).end("failing on purpose");
      else setTimeout(() => res.writeHead(204).end(), SLOW_MS);
    });
  });
  server.keepAliveTimeout = 60_000;
  const port = await freePort();
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${port}` };
}

function openFds(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

function fileMiB(...files) {
  let bytes = 0;
  for (const f of files) {
    try {
      bytes += fs.statSync(f).size;
    } catch {}
  }
  return bytes / (1 << 20);
}

// The endpoints: nginx for all but the last two, then the failing one and the slow one.
function endpointUrls(o, nginx, odd) {
  const urls = [];
  for (let i = 0; i < o.endpoints - 2; i++) urls.push(`${nginx.url}/ep${i}`);
  urls.push(`${odd.url}/fail`, `${odd.url}/slow`);
  return urls;
}

// Half of what herald sustains here with these endpoints: 15 s at full speed on a herald of
// its own, the deliveries per second it made, in messages per second, halved.
async function calibrate(work, o, nginx, odd) {
  const dir = path.join(work, "calibrate");
  fs.mkdirSync(dir);
  const h = await startHerald(dir);
  try {
    const app = await setupApp(h, endpointUrls(o, nginx, odd));
    const before = await metrics(h);
    const pub = await publish(h, app, { seconds: 15, connections: 16 });
    const after = await metrics(h);
    const made = (m) => m.success + m.httpError + m.networkError;
    const perSecond = (made(after) - made(before)) / ((after.at - before.at) / 1000);
    log(`calibration: ${Math.round(pub.rate)} messages/s accepted, ${Math.round(perSecond)} deliveries/s made`);
    return Math.max(1, Math.floor(perSecond / o.endpoints / 2));
  } finally {
    await stop(h.proc);
  }
}

// Growth between the middle third of the run and the last third: the last third's highest
// value over the middle third's. Bounded means it levelled off: at most 10 % more.
// How much `key` rose from the middle third of the run to the last: the ratio of their medians
// (a trend moves the median; one sample's spike does not), and of their highest values.
function growth(samples, key) {
  const n = samples.length;
  const mid = samples.slice(Math.floor(n / 3), Math.floor((2 * n) / 3)).map((s) => s[key]);
  const last = samples.slice(Math.floor((2 * n) / 3)).map((s) => s[key]);
  if (!mid.length || !last.length) return { median: NaN, max: NaN };
  const median = (xs) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  return { median: median(last) / median(mid), max: Math.max(...last) / Math.max(...mid) };
}

function chart(samples, file) {
  const W = 900;
  const H = 130;
  const series = [
    ["RSS (MiB)", "rssMiB"],
    ["SQLite's memory (MiB)", "sqliteMiB"],
    ["heap in use (MiB)", "heapMiB"],
    ["heap free, held (MiB)", "heapFreeMiB"],
    ["open file descriptors", "fds"],
    ["database files (MiB)", "dbMiB"],
    ["deliveries/s", "perSecond"],
    ["deliveries pending", "pending"],
  ];
  const parts = [];
  const maxT = Math.max(1, ...samples.map((s) => s.minute));
  series.forEach(([label, key], i) => {
    const y0 = i * (H + 20) + 10;
    const max = Math.max(1e-9, ...samples.map((s) => s[key]));
    const pts = samples
      .map((s) => `${(60 + (s.minute / maxT) * (W - 80)).toFixed(1)},${(y0 + H - (s[key] / max) * H).toFixed(1)}`)
      .join(" ");
    parts.push(
      `<text x="10" y="${y0 + 12}" font-size="12">${label}: max ${max.toFixed(key === "fds" ? 0 : 1)}</text>`,
      `<line x1="60" y1="${y0 + H}" x2="${W - 20}" y2="${y0 + H}" stroke="#999"/>`,
      `<polyline fill="none" stroke="#2563eb" stroke-width="2" points="${pts}"/>`,
    );
  });
  const height = series.length * (H + 20) + 20;
  fs.writeFileSync(
    file,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" font-family="sans-serif">` +
      `<rect width="100%" height="100%" fill="white"/>${parts.join("")}` +
      `<text x="${W - 200}" y="${height - 4}" font-size="11">minutes since the start: 0 to ${maxT}</text></svg>\n`,
  );
}

function report(o, rate, samples, chartName, took) {
  const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "n/a");
  const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
  const verdicts = [
    ["RSS", growth(samples, "rssMiB")],
    ["SQLite's memory", growth(samples, "sqliteMiB")],
    ["heap in use", growth(samples, "heapMiB")],
    ["open file descriptors", growth(samples, "fds")],
    ["database files", growth(samples, "dbMiB")],
    ["deliveries pending", growth(samples, "pending")],
  ];
  const lines = [
    "## Soak",
    "",
    `\`node bench/soak.mjs --minutes ${o.minutes}\` on ${os.cpus().length} cores, ${new Date().toISOString().slice(0, 10)}: ` +
      `one herald on SQLite for ${o.minutes} minutes at ${rate} messages/s (half the rate it sustained in a 15 s calibration), ` +
      `${o.endpoints} endpoints (${o.endpoints - 2} nginx answering 204, one answering 500 to everything, one answering after ${SLOW_MS} ms), ` +
      `\`HERALD_RETENTION=${o.retention}\` (so messages are deleted at twice that), \`HERALD_RETRY_SCHEDULE=${RETRY_SCHEDULE}\` and otherwise the defaults. It took ${Math.round(took / 60)} minutes in all.`,
    "",
    "| what | median of the last third ÷ median of the middle third | highest ÷ highest | verdict |",
    "|---|---|---|---|",
    ...verdicts.map(
      ([what, g]) => `| ${what} | ${f2(g.median)} | ${f2(g.max)} | ${g.median <= 1.1 ? "bounded" : "**grows**"} |`,
    ),
    "",
    `Chart: [${chartName}](${chartName}).`,
    "",
    "| minute | RSS MiB | SQLite's MiB | heap in use MiB | heap free MiB | fds | database MiB | deliveries/s | pending |",
    "|---|---|---|---|---|---|---|---|---|",
    ...samples.map(
      (s) =>
        `| ${s.minute} | ${f1(s.rssMiB)} | ${f1(s.sqliteMiB)} | ${f1(s.heapMiB)} | ${f1(s.heapFreeMiB)} | ${s.fds} | ${f1(s.dbMiB)} | ${Math.round(s.perSecond)} | ${s.pending} |`,
    ),
    "",
  ];
  return { text: lines.join("\n"), bounded: verdicts.every(([, g]) => g.median <= 1.1) };
}

// Puts `text` in bench/RESULTS.md's soak section, in place of the one there was.
function updateResults(text) {
  const file = path.join(ROOT, "bench/RESULTS.md");
  let old = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  const i = old.indexOf(SOAK_BEGIN);
  const j = old.indexOf(SOAK_END);
  if (i >= 0 && j > i) old = old.slice(0, i) + old.slice(j + SOAK_END.length);
  fs.writeFileSync(file, `${old.trimEnd()}\n\n${SOAK_BEGIN}\n${text.trimEnd()}\n${SOAK_END}\n`);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "herald-soak-"));
  const t0 = Date.now();
  const nginx = await startNginx(path.join(work, "nginx"));
  const odd = await startOddReceiver();
  const rate = o.rate || (await calibrate(work, o, nginx, odd));
  log(`${o.minutes} minutes at ${rate} messages/s to ${o.endpoints} endpoints`);

  const dir = path.join(work, "soak");
  fs.mkdirSync(dir);
  const h = await startHerald(dir, { HERALD_RETENTION: o.retention, HERALD_RETRY_SCHEDULE: RETRY_SCHEDULE });
  const app = await setupApp(h, endpointUrls(o, nginx, odd));
  const publishing = publish(h, app, { seconds: o.minutes * 60, connections: 8, rate });
  const samples = [];
  const began = Date.now();
  let last = await metrics(h);
  const made = (m) => m.success + m.httpError + m.networkError;
  const count = Math.round((o.minutes * 60) / o.sampleS);
  for (let k = 1; k <= count; k++) {
    await sleep(Math.max(0, began + k * o.sampleS * 1000 - Date.now()));
    const minute = Number(((k * o.sampleS) / 60).toFixed(2));
    const m = await metrics(h);
    const s = {
      minute,
      rssMiB: memory(h.proc.pid).rssMiB,
      sqliteMiB: m.sqliteBytes / (1 << 20),
      heapMiB: m.heapInUseBytes / (1 << 20),
      heapFreeMiB: m.heapFreeBytes / (1 << 20),
      fds: openFds(h.proc.pid),
      dbMiB: fileMiB(h.dbPath, `${h.dbPath}-wal`, `${h.dbPath}-shm`),
      perSecond: (made(m) - made(last)) / ((m.at - last.at) / 1000),
      pending: m.pending,
    };
    last = m;
    samples.push(s);
    log(`minute ${minute}: RSS ${s.rssMiB.toFixed(1)} MiB (SQLite ${s.sqliteMiB.toFixed(1)}, heap ${s.heapMiB.toFixed(1)} in use, ${s.heapFreeMiB.toFixed(1)} free), ${s.fds} fds, database ${s.dbMiB.toFixed(1)} MiB, ${Math.round(s.perSecond)} deliveries/s, ${s.pending} pending`);
  }
  const pub = await publishing;
  await stop(h.proc);
  await stop(nginx.proc);
  odd.server.closeAllConnections?.();
  odd.server.close();
  if (pub.errors > 0) log(`the publisher saw ${pub.errors} errors`);

  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  const chartName = path.basename(o.out).replace(/\.md$/i, "") + ".svg";
  chart(samples, path.join(path.dirname(o.out), chartName));
  const rep = report(o, rate, samples, chartName, (Date.now() - t0) / 1000);
  fs.writeFileSync(o.out, `# herald soak\n\n${rep.text.replace(/^## Soak\n\n/, "")}`);
  if (path.resolve(o.out) === path.join(ROOT, "bench/RESULTS-soak.md")) updateResults(rep.text);
  fs.rmSync(work, { recursive: true, force: true });
  log(`wrote ${path.relative(process.cwd(), o.out)}: ${rep.bounded ? "nothing grew" : "something grew"}`);
  const delivered = samples.some((x) => x.perSecond > 0);
  if (!delivered) log("nothing was delivered");
  process.exit(delivered && (rep.bounded || o.smoke) ? 0 : 1);
}

main().catch((e) => {
  console.error(`soak: ${e.stack || e.message}`);
  process.exit(1);
});
