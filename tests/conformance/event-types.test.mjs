// Event types beyond CRUD, driven through the official svix SDK: feature flags and what
// portal tokens see of them.
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
