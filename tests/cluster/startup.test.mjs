// Two nodes started at the same moment on an empty database: both come up, the migrations are
// applied once (each version recorded once, in order), nothing is logged at warning level or
// above, and the schema serves each node: an app, an endpoint and a delivered message through
// each, and one node's app used through the other.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";

import { psql, startHerald, startReceiver, uniq, verifyDelivery } from "../conformance/harness.mjs";
import { NEEDS_POSTGRES, warningsLogged } from "./support.mjs";

const ROUNDS = 3; // a race at start-up shows only sometimes: try a few fresh databases

const cleanups = [];
after(async () => {
  const errors = [];
  for (const c of cleanups.reverse()) await c().catch((e) => errors.push(e));
  if (errors.length) throw errors[0];
});

describe("two nodes starting at once on an empty database", { skip: NEEDS_POSTGRES }, () => {
  for (let round = 1; round <= ROUNDS; round++) {
    test(`round ${round}: both serve, migrations applied once, no warning logged`, async () => {
      const rx = await startReceiver();
      cleanups.push(() => rx.close());
      // startHerald spawns every node at once on its fresh database.
      const h = await startHerald({ env: { HERALD_LOG_LEVEL: "info" } });
      try {
        const sql = "SELECT version, count(*) FROM schema_version GROUP BY version ORDER BY version";
        const rows = (await psql(sql, { uri: h.dbPath }))
          .trim()
          .split("\n")
          .map((l) => l.split("|").map(Number));
        assert.ok(rows.length >= 1, "schema_version lists the applied migrations");
        assert.deepEqual(
          rows,
          rows.map((_, i) => [i + 1, 1]),
          `each migration recorded once, versions 1..${rows.length}: ${JSON.stringify(rows)}`,
        );

        const apps = [];
        for (const node of h.nodes) {
          const app = await node.svix.application.create({ name: `start-${node.name}`, uid: uniq("start") });
          const p = `/${uniq("start")}`;
          const ep = await node.svix.endpoint.create(app.id, { url: rx.url(p) });
          const { key } = await node.svix.endpoint.getSecret(app.id, ep.id);
          const msg = await node.svix.message.create(app.id, { eventType: "start.test", payload: { via: node.name } });
          const [r] = await rx.waitFor(p, 1, 5000);
          verifyDelivery(key, r, { msgId: msg.id, payload: { via: node.name }, what: `message through ${node.name}` });
          apps.push({ app, p, key });
        }
        // Each node's app through the other node.
        for (const [i, node] of h.nodes.entries()) {
          const { app, p, key } = apps[(i + 1) % apps.length];
          const msg = await node.svix.message.create(app.uid, { eventType: "start.test", payload: { cross: node.name } });
          const [, r] = await rx.waitFor(p, 2, 5000);
          verifyDelivery(key, r, { msgId: msg.id, payload: { cross: node.name }, what: `other node's app through ${node.name}` });
        }
        for (const node of h.nodes) {
          assert.deepEqual(warningsLogged(node), [], `${node.name} logged warnings or errors while starting and serving`);
        }
      } finally {
        await h.stop();
      }
    });
  }
});
