// Event types beyond CRUD, driven through the official svix SDK: feature flags and what
// portal tokens see of them, the environment export and import, and the OpenAPI import.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  Svix,
  assertValidationBody,
  expectApiError,
  instrumentSvix,
  rawRequest,
  startHerald,
  uniq,
} from "./harness.mjs";

let h;
let svix;

before(async () => {
  h = await startHerald();
  svix = h.svix;
});

after(async () => {
  await h?.stop();
});

// Every event type the client may list (archived ones too when asked), paged through.
async function allTypes(client, { includeArchived = false, withContent = false, limit = 250 } = {}) {
  const out = [];
  let iterator;
  for (let i = 0; i < 100; i++) {
    const page = await client.eventType.list({ limit, iterator, includeArchived, withContent });
    out.push(...page.data);
    if (page.done) return out;
    iterator = page.iterator;
  }
  throw new Error("the event type list never said done");
}

// The names among `names` that `types` holds.
const present = (types, names) => names.filter((n) => types.some((t) => t.name === n));

async function portalClient(appId, featureFlags) {
  const access = await svix.authentication.appPortalAccess(appId, featureFlags ? { featureFlags } : {});
  return instrumentSvix(new Svix(access.token, { serverUrl: h.url }));
}

describe("event type feature flags", () => {
  test("featureFlags are stored on create, replaced by upsert, changed by patch, read back", async () => {
    const name = uniq("ff.create");
    const created = await svix.eventType.create({ name, description: "flagged", featureFlags: ["beta"] });
    assert.deepEqual(created.featureFlags, ["beta"], "create answers the flags");
    assert.deepEqual((await svix.eventType.get(name)).featureFlags, ["beta"], "get reads them back");
    const listed = (await allTypes(svix)).find((t) => t.name === name);
    assert.deepEqual(listed?.featureFlags, ["beta"], "the list carries them");

    const upserted = await svix.eventType.upsert(name, { description: "two flags", featureFlags: ["beta", "gamma"] });
    assert.deepEqual(upserted.featureFlags, ["beta", "gamma"], "upsert replaces them");
    const patched = await svix.eventType.patch(name, { description: "patched text" });
    assert.deepEqual(patched.featureFlags, ["beta", "gamma"], "a patch without featureFlags keeps them");
    const cleared = await svix.eventType.patch(name, { featureFlags: null });
    assert.equal(cleared.featureFlags ?? null, null, "a patch with featureFlags: null clears them");
    assert.equal((await svix.eventType.get(name)).featureFlags ?? null, null, "cleared for good");

    const plain = await svix.eventType.create({ name: uniq("ff.plain"), description: "no flags" });
    assert.equal(plain.featureFlags ?? null, null, "no flags read as null");
  });

  test("the older featureFlag (one flag) is read back beside featureFlags", async () => {
    const name = uniq("ff.single");
    await svix.eventType.create({ name, description: "one flag", featureFlags: ["solo"] });
    const got = await svix.eventType.get(name);
    assert.equal(got.featureFlag, "solo", "featureFlag names the only flag");
    await svix.eventType.upsert(name, { description: "two", featureFlags: ["solo", "duo"] });
    assert.equal((await svix.eventType.get(name)).featureFlag ?? null, null, "featureFlag is null with two flags");
  });

  test("bad feature flags → 422 naming the field; nothing is written", async () => {
    const name = uniq("ff.bad");
    const err = await expectApiError(
      svix.eventType.create({ name, description: "d", featureFlags: ["has space"] }),
      422,
      "validation",
      "a flag that is not a name",
    );
    assertValidationBody(err.body, "bad flag");
    assert.ok(err.body.detail.some((d) => d.loc.includes("featureFlags")), JSON.stringify(err.body));
    await expectApiError(svix.eventType.get(name), 404, "not_found", "nothing was created");
    const access = await rawRequest(h, "POST", `/api/v1/auth/app-portal-access/${(await svix.application.create({ name: "ff" })).id}`, {
      body: { featureFlags: "beta" },
    });
    assert.equal(access.status, 422, `portal access with featureFlags not a list: ${access.text}`);
  });

  test("a portal token sees only the event types whose flags it was granted; admin sees all", async () => {
    const app = await svix.application.create({ name: "ff-portal", uid: uniq("ff-portal") });
    const open = uniq("ff.open");
    const beta = uniq("ff.beta");
    const both = uniq("ff.both");
    await svix.eventType.create({ name: open, description: "for everyone" });
    await svix.eventType.create({ name: beta, description: "beta only", featureFlags: ["beta"] });
    await svix.eventType.create({ name: both, description: "beta and gamma", featureFlags: ["beta", "gamma"] });
    const names = [open, beta, both];

    assert.deepEqual(present(await allTypes(svix), names), names, "the admin token lists them all");

    const none = await portalClient(app.id);
    assert.deepEqual(present(await allTypes(none), names), [open], "no flags granted: only the open type");
    await expectApiError(none.eventType.get(beta), 404, "not_found", "get of a type whose flag was not granted");
    assert.equal((await none.eventType.get(open)).name, open, "get of an open type");

    const betaOnly = await portalClient(app.id, ["beta"]);
    assert.deepEqual(present(await allTypes(betaOnly), names), [open, beta], "beta granted: not the one needing gamma too");
    await expectApiError(betaOnly.eventType.get(both), 404, "not_found", "every flag must be granted");

    const all = await portalClient(app.id, ["gamma", "beta"]);
    assert.deepEqual(present(await allTypes(all), names), names, "both granted: all three");

    // Pages stay full and the iterator walks past hidden types: page by page with limit 1.
    const paged = await allTypes(none, { limit: 1 });
    assert.deepEqual(present(paged, names), [open], "paging one by one shows the same");
    assert.ok(paged.every((t) => !t.featureFlags || t.featureFlags.length === 0), "no flagged type leaks into a page");
  });
});

describe("environment export and import", () => {
  test("export holds every event type with its schemas and flags; import brings them back", async () => {
    const name = uniq("env.kept");
    const archived = uniq("env.archived");
    const schemas = { 1: { type: "object", properties: { id: { type: "string" } }, required: ["id"] } };
    await svix.eventType.create({ name, description: "exported", schemas, groupName: "env", featureFlags: ["beta"] });
    await svix.eventType.create({ name: archived, description: "archived" });
    await svix.eventType.delete(archived);

    const env = await svix.environment.export();
    assert.ok(env.createdAt instanceof Date && !Number.isNaN(env.createdAt.getTime()), "createdAt is a date");
    assert.equal(env.version, 1, "version");
    assert.deepEqual(env.connectors, [], "no connectors");
    const mine = env.eventTypes.find((t) => t.name === name);
    assert.ok(mine, "the event type is exported");
    assert.deepEqual(mine.schemas, schemas, "with its schemas");
    assert.equal(mine.groupName, "env");
    assert.deepEqual(mine.featureFlags, ["beta"]);
    assert.equal(env.eventTypes.find((t) => t.name === archived)?.archived, true, "archived types are exported as archived");

    // Change it, then import the export: it is as it was.
    await svix.eventType.upsert(name, { description: "changed since", schemas: null });
    await svix.environment.import({ eventTypes: env.eventTypes, settings: env.settings });
    const back = await svix.eventType.get(name);
    assert.equal(back.description, "exported", "import replaced the description");
    assert.deepEqual(back.schemas, schemas, "and the schemas");
    assert.deepEqual(back.featureFlags, ["beta"], "and the flags");
    assert.equal(back.createdAt.getTime(), mine.createdAt.getTime(), "an updated type keeps its createdAt");
    assert.equal((await svix.eventType.get(archived)).archived, true, "still archived");
  });

  test("import creates new event types and deletes nothing", async () => {
    const fresh = uniq("env.new");
    const bystander = uniq("env.bystander");
    await svix.eventType.create({ name: bystander, description: "not in the document" });
    await svix.environment.import({ eventTypes: [{ name: fresh, description: "imported", featureFlags: ["x"] }] });
    const got = await svix.eventType.get(fresh);
    assert.equal(got.description, "imported");
    assert.deepEqual(got.featureFlags, ["x"]);
    assert.equal((await svix.eventType.get(bystander)).archived, false, "the others are left alone");
    await svix.environment.import({}); // an empty document changes nothing
  });

  test("a bad document → 422 listing each problem, and nothing is written", async () => {
    const good = uniq("env.good");
    const existing = uniq("env.existing");
    await svix.eventType.create({ name: existing, description: "before" });
    const err = await expectApiError(
      svix.environment.import({
        eventTypes: [
          { name: good, description: "fine" },
          { name: existing, description: "would change" },
          { name: "bad name!", description: "bad" },
          { name: uniq("env.x"), description: "d", schemas: "not an object" },
          { name: good, description: "twice" },
        ],
      }),
      422,
      "validation",
      "import of a bad document",
    );
    assertValidationBody(err.body, "import");
    const locs = err.body.detail.map((d) => d.loc.join("."));
    for (const want of ["body.eventTypes.2.name", "body.eventTypes.3.schemas", "body.eventTypes.4.name"]) {
      assert.ok(locs.includes(want), `the 422 names ${want}: ${JSON.stringify(err.body.detail)}`);
    }
    await expectApiError(svix.eventType.get(good), 404, "not_found", "the good entry was not written either");
    assert.equal((await svix.eventType.get(existing)).description, "before", "the existing type is unchanged");

    const connectors = await rawRequest(h, "POST", "/api/v1/environment/import", {
      body: { eventTypes: [{ name: good, description: "d" }], connectors: [{ name: "c", transformation: "x" }] },
    });
    assert.equal(connectors.status, 422, `connectors are refused: ${connectors.text}`);
    assert.match(connectors.text, /connectors/);
    await expectApiError(svix.eventType.get(good), 404, "not_found", "nothing written beside refused connectors");
  });

  test("an application's token may neither export nor import", async () => {
    const app = await svix.application.create({ name: "env-portal" });
    const portal = await portalClient(app.id);
    await expectApiError(portal.environment.export(), 404, undefined, "export with an app token");
    await expectApiError(portal.environment.import({ eventTypes: [] }), 404, undefined, "import with an app token");
  });
});

describe("event type import from OpenAPI", () => {
  const spec = (webhooks, extra = {}) => ({
    openapi: "3.1.0",
    info: { title: "t", version: "1" },
    webhooks,
    components: {
      schemas: {
        Money: { type: "object", properties: { amount: { type: "integer" }, currency: { type: "string" } } },
        Invoice: {
          type: "object",
          properties: { id: { type: "string" }, total: { $ref: "#/components/schemas/Money" } },
          required: ["id"],
        },
      },
    },
    ...extra,
  });
  const hook = (schema, more = {}) => ({
    post: {
      requestBody: { content: { "application/json": { schema } } },
      responses: { 200: { description: "ok" } },
      ...more,
    },
  });

  test("webhooks become event types: name, description, schema under version 1 with $refs inlined", async () => {
    const paid = uniq("oa.invoice.paid");
    const voided = uniq("oa.invoice.voided");
    const out = await svix.eventType.importOpenapi({
      spec: spec({
        [paid]: hook({ $ref: "#/components/schemas/Invoice" }, {
          summary: "short",
          description: "An invoice was paid",
          "x-svix-group-name": "billing",
          "x-svix-feature-flags": ["beta"],
        }),
        [voided]: hook({ type: "object" }, { summary: "An invoice was voided", deprecated: true }),
      }),
    });
    assert.deepEqual(out.data.modified, [paid, voided], `modified: ${JSON.stringify(out)}`);
    const got = await svix.eventType.get(paid);
    assert.equal(got.description, "An invoice was paid", "the description wins over the summary");
    assert.equal(got.groupName, "billing");
    assert.deepEqual(got.featureFlags, ["beta"]);
    assert.equal(got.deprecated, false);
    assert.deepEqual(got.schemas, {
      1: {
        type: "object",
        properties: {
          id: { type: "string" },
          total: { type: "object", properties: { amount: { type: "integer" }, currency: { type: "string" } } },
        },
        required: ["id"],
      },
    });
    const v = await svix.eventType.get(voided);
    assert.equal(v.description, "An invoice was voided", "the summary when there is no description");
    assert.equal(v.deprecated, true);

    // Importing again updates, and unarchives.
    await svix.eventType.delete(voided);
    await svix.eventType.importOpenapi({
      specRaw: JSON.stringify(spec({ [voided]: hook({ type: "object" }, { description: "new text" }) }, { webhooks: undefined, "x-webhooks": { [voided]: hook({ type: "object" }, { description: "new text" }) } })),
    });
    const again = await svix.eventType.get(voided);
    assert.equal(again.description, "new text", "specRaw and x-webhooks are read");
    assert.equal(again.archived, false, "an archived type is unarchived");
    assert.equal(again.deprecated, false);
    assert.equal(again.createdAt.getTime(), v.createdAt.getTime(), "it keeps its createdAt");
  });

  test("dryRun answers what would change and changes nothing", async () => {
    const name = uniq("oa.dry");
    const out = await svix.eventType.importOpenapi({
      dryRun: true,
      replaceAll: true,
      spec: spec({ [name]: hook({ type: "object" }, { description: "would be" }) }),
    });
    assert.deepEqual(out.data.modified, [], "nothing was modified");
    assert.equal(out.data.toModify?.length, 1, `toModify: ${JSON.stringify(out)}`);
    assert.equal(out.data.toModify[0].name, name);
    assert.equal(out.data.toModify[0].description, "would be");
    assert.deepEqual(out.data.toModify[0].schemas, { 1: { type: "object" } });
    await expectApiError(svix.eventType.get(name), 404, "not_found", "a dry run creates nothing");
    assert.ok((await allTypes(svix)).length > 0, "and a dry replaceAll archives nothing");
  });

  test("replaceAll archives the event types the document does not name", async () => {
    const stays = uniq("oa.stays");
    const goes = uniq("oa.goes");
    await svix.eventType.create({ name: goes, description: "not in the document" });
    await svix.eventType.importOpenapi({ replaceAll: true, spec: spec({ [stays]: hook({ type: "object" }) }) });
    assert.equal((await svix.eventType.get(goes)).archived, true, "the unnamed type is archived");
    assert.equal((await svix.eventType.get(stays)).archived, false);
    assert.deepEqual((await allTypes(svix)).map((t) => t.name), [stays], "only the document's types are left unarchived");
  });

  test("bad documents → 422 with a clear detail; nothing is written", async () => {
    const name = uniq("oa.bad");
    const cases = [
      ["neither spec nor specRaw", {}, "spec"],
      ["both spec and specRaw", { spec: spec({}), specRaw: "{}" }, "spec"],
      ["specRaw that is not JSON", { specRaw: "openapi: 3.1.0\nwebhooks: {}\n" }, "specRaw"],
      ["a Swagger 2 document", { spec: { swagger: "2.0", paths: {} } }, "openapi"],
      ["no webhooks", { spec: { openapi: "3.1.0", paths: {} } }, "webhooks"],
      ["a dangling $ref", { spec: spec({ [name]: hook({ $ref: "#/components/schemas/Nope" }) }) }, name],
      ["an external $ref", { spec: spec({ [name]: hook({ $ref: "other.yaml#/Thing" }) }) }, name],
      ["a recursive schema", {
        spec: spec({ [name]: hook({ $ref: "#/components/schemas/Node" }) }, {
          components: { schemas: { Node: { type: "object", properties: { next: { $ref: "#/components/schemas/Node" } } } } },
        }),
      }, name],
      ["a bad event type name", { spec: spec({ [name]: hook({ type: "object" }), "bad name": hook({ type: "object" }) }) }, "bad name"],
      ["a webhook without an operation", { spec: spec({ [name]: { summary: "no operation" } }) }, name],
    ];
    for (const [what, body, locPart] of cases) {
      const res = await rawRequest(h, "POST", "/api/v1/event-type/import/openapi", { body });
      assert.equal(res.status, 422, `${what}: expected 422, got ${res.status} ${res.text}`);
      assertValidationBody(res.json, what);
      assert.ok(
        res.json.detail.some((d) => d.loc.includes(locPart)),
        `${what}: a detail located at ${locPart}: ${JSON.stringify(res.json.detail)}`,
      );
    }
    await expectApiError(svix.eventType.get(name), 404, "not_found", "no bad document wrote anything");
  });
});
