// The receiver examples of docs/SIGNATURES.md, run exactly as written against real deliveries
// of every scheme: the Node ones imported as modules, the Python ones under python3. Each must
// return the payload of a genuine delivery and refuse one with another secret or a changed body.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { tmpdir } from "node:os";

import { makeSecret, startHerald, startReceiver, uniq } from "./harness.mjs";
import { createEndpoint, makeEd25519Key, secretOf } from "./schemes.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DOC = path.resolve(HERE, "../../docs/SIGNATURES.md");
const SCHEMES = ["standard", "stripe", "github", "ed25519"];

/** The doc's snippets by name: each `<!-- snippet: NAME -->` line and the fenced block after it. */
function snippets() {
  const text = readFileSync(DOC, "utf8");
  const found = new Map();
  for (const m of text.matchAll(/<!-- snippet: (\S+) -->\n```\w+\n([\s\S]*?)```/g)) {
    assert.ok(!found.has(m[1]), `docs/SIGNATURES.md names the snippet ${m[1]} twice`);
    found.set(m[1], m[2]);
  }
  return found;
}

let h;
let rx;
const cases = new Map(); // scheme -> [{what, headers, body (Buffer), secret, valid}]
let dir;

before(async () => {
  h = await startHerald();
  rx = await startReceiver();
  dir = mkdtempSync(path.join(tmpdir(), "herald-snippets-"));
  const app = await h.svix.application.create({ name: "snippets", uid: uniq("snip") });
  for (const scheme of SCHEMES) {
    const p = `/${uniq(scheme)}`;
    const ep = await createEndpoint(h, app.id, { url: rx.url(p), signatureScheme: scheme });
    const secret = await secretOf(h, app.id, ep.id);
    const payload = { scheme, text: "naïve café ✓", n: 42, nested: { list: [1, 2.5, null] } };
    await h.svix.message.create(app.id, { eventType: "snippet.test", payload });
    const [req] = await rx.waitFor(p, 1, 5000);
    const other = scheme === "ed25519" ? makeEd25519Key().whpk : makeSecret(32);
    const changed = Buffer.from(req.body.replace("42", "43"));
    cases.set(scheme, [
      { what: "the delivery", headers: req.headers, body: req.rawBody, secret, valid: payload },
      { what: "another secret", headers: req.headers, body: req.rawBody, secret: other, valid: null },
      { what: "a changed body", headers: req.headers, body: changed, secret, valid: null },
    ]);
  }
});

after(async () => {
  await h?.stop();
  await rx?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("docs/SIGNATURES.md", () => {
  test("has a Node, a Python and a Go example for every scheme", () => {
    const names = [...snippets().keys()].sort();
    const want = SCHEMES.flatMap((s) => ["node", "python", "go"].map((l) => `${l}-${s}`)).sort();
    assert.deepEqual(names, want);
  });

  for (const scheme of SCHEMES) {
    test(`node-${scheme} verifies a real delivery and refuses forgeries`, async () => {
      // Written beside this file, so that its imports resolve to this suite's node_modules.
      const file = path.join(HERE, `.snippet-node-${scheme}-${process.pid}.mjs`);
      writeFileSync(file, snippets().get(`node-${scheme}`));
      try {
        const { verify } = await import(pathToFileURL(file).href);
        for (const c of cases.get(scheme)) {
          if (c.valid) {
            assert.deepEqual(await verify(c.headers, c.body, c.secret), c.valid, `${scheme}: ${c.what}`);
          } else {
            await assert.rejects(async () => verify(c.headers, c.body, c.secret), `${scheme}: ${c.what} must throw`);
          }
        }
      } finally {
        rmSync(file, { force: true });
      }
    });
  }

  for (const scheme of SCHEMES) {
    test(`python-${scheme} verifies a real delivery and refuses forgeries`, () => {
      const python = spawnSync("python3", ["--version"], { encoding: "utf8" });
      assert.equal(python.status, 0, "python3 is needed to run the Python examples (scripts/install-deps.sh test installs it)");
      const module = path.join(dir, `snippet_${scheme}.py`);
      writeFileSync(module, snippets().get(`python-${scheme}`));
      // A driver that runs verify on each case and reports its result or its error.
      const driver = [
        "import base64, importlib.util, json, sys",
        `spec = importlib.util.spec_from_file_location("snippet", ${JSON.stringify(module)})`,
        "snippet = importlib.util.module_from_spec(spec)",
        "spec.loader.exec_module(snippet)",
        "out = []",
        "for c in json.load(sys.stdin):",
        "    try:",
        "        out.append({'ok': snippet.verify(c['headers'], base64.b64decode(c['body']), c['secret'])})",
        "    except ValueError as e:",
        "        out.append({'error': str(e)})",
        "print(json.dumps(out))",
      ].join("\n");
      const input = cases.get(scheme).map((c) => ({ headers: c.headers, body: c.body.toString("base64"), secret: c.secret }));
      const run = spawnSync("python3", ["-c", driver], { input: JSON.stringify(input), encoding: "utf8", timeout: 30_000 });
      assert.equal(run.status, 0, `python-${scheme} failed: ${run.stderr}`);
      const results = JSON.parse(run.stdout);
      cases.get(scheme).forEach((c, i) => {
        if (c.valid) assert.deepEqual(results[i], { ok: c.valid }, `${scheme}: ${c.what}`);
        else assert.ok(results[i].error, `${scheme}: ${c.what} must raise ValueError, got ${JSON.stringify(results[i])}`);
      });
    });
  }
});
