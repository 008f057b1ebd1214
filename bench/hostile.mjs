// How herald's API answers while hostile clients hold connections open: idle ones that never
// send a byte and slowloris ones that send one header line every second. For each load it opens
// the connections (from 127.88.0.1 and up, a share per address), then times GET /api/v1/health
// and POST /api/v1/app/{app}/msg from 127.0.0.1 on fresh connections, and prints the medians and
// the worst. A request unanswered after --timeout counts as that long.
//   node bench/hostile.mjs [--idle 0,64,2000] [--slow 200] [--samples 9] [--timeout 5000]
// HERALD_BIN picks the binary (default build/herald). Node's standard library only.
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";

import { TOKEN, killChildren, setupApp, sleep, startHerald, stop } from "./lib.mjs";

function parseArgs(argv) {
  const o = { idle: [0, 64, 2000], slow: 200, samples: 9, timeout: 5000 };
  for (let i = 0; i < argv.length; i++) {
    const next = () => argv[++i];
    if (argv[i] === "--idle") o.idle = next().split(",").map(Number);
    else if (argv[i] === "--slow") o.slow = Number(next());
    else if (argv[i] === "--samples") o.samples = Number(next());
    else if (argv[i] === "--timeout") o.timeout = Number(next());
    else throw new Error(`hostile: unknown argument ${argv[i]}`);
  }
  return o;
}

// Opens `n` connections to `port` from 127.88.0.1 and up, at most 200 from one address.
async function openMany(port, n, first = 0) {
  const sockets = [];
  for (let i = 0; i < n; i++) {
    const k = first + i;
    const localAddress = `127.88.${Math.floor(k / 200 / 250)}.${1 + (Math.floor(k / 200) % 250)}`;
    const s = net.connect({ host: "127.0.0.1", port, localAddress });
    s.on("error", () => {});
    sockets.push(s);
    if (i % 100 === 99) await sleep(5);
  }
  await sleep(200);
  return sockets;
}

// One request on a fresh connection; its time in ms (`timeout` when it went unanswered).
function timed(port, method, p, body, timeout) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path: p,
        agent: false,
        headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
        timeout,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ ms: performance.now() - t0, status: res.statusCode }));
      },
    );
    req.on("timeout", () => {
      req.destroy();
      resolve({ ms: timeout, status: 0 });
    });
    req.on("error", () => resolve({ ms: performance.now() - t0, status: 0 }));
    req.end(body);
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-hostile-"));
  const h = await startHerald(dir);
  const app = await setupApp(h, []);
  console.log(`| idle | slowloris | health median ms | health max ms | message median ms | message max ms | unanswered |`);
  console.log(`|---|---|---|---|---|---|---|`);
  try {
    for (const idle of o.idle) {
      const idleSockets = await openMany(h.port, idle);
      const slowSockets = await openMany(h.port, o.slow, idle);
      for (const s of slowSockets) s.write("POST /api/v1/health HTTP/1.1\r\nHost: x\r\n");
      const health = [];
      const message = [];
      let unanswered = 0;
      for (let i = 0; i < o.samples; i++) {
        for (const s of slowSockets) if (!s.destroyed) s.write(`X-Slow-${i}: 1\r\n`);
        const a = await timed(h.port, "GET", "/api/v1/health", undefined, o.timeout);
        const b = await timed(h.port, "POST", `/api/v1/app/${app}/msg`,
          JSON.stringify({ eventType: "hostile", payload: { i } }), o.timeout);
        health.push(a.ms);
        message.push(b.ms);
        if (a.status !== 204) unanswered++;
        if (b.status !== 202) unanswered++;
        await sleep(1000);
      }
      for (const s of [...idleSockets, ...slowSockets]) s.destroy();
      const f = (x) => x.toFixed(1);
      console.log(`| ${idle} | ${o.slow} | ${f(median(health))} | ${f(Math.max(...health))} | ${f(median(message))} | ${f(Math.max(...message))} | ${unanswered} of ${2 * o.samples} |`);
      await sleep(500);
    }
  } finally {
    await stop(h.proc);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

process.on("exit", killChildren);
main().catch((e) => {
  console.error(e.stack || String(e));
  process.exitCode = 1;
});
