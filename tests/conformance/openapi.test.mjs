// GET /api/v1/openapi.json: herald's API as an OpenAPI 3.1 document (api/openapi.json). It must
// pass a maintained OpenAPI validator (@seriousme/openapi-schema-validator), be consistent in
// itself (unique operationIds, every path parameter declared), and describe what herald really
// answers: real replies, made over plain HTTP, are checked against the schema of their operation
// and status, required properties, types and formats, and no property the schema leaves out.
// (That every route is documented, and every documented one served, is api_test's.)
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { Validator } from "@seriousme/openapi-schema-validator";

import { RFC3339, eventually, rawRequest, settled, startHerald, startReceiver, uniq } from "./harness.mjs";

const METHODS = ["get", "put", "post", "delete", "patch"];

let h;
let rx;
let doc; // as served
let resolved; // the same with every $ref replaced by what it names

before(async () => {
  h = await startHerald();
  rx = await startReceiver();
  const res = await rawRequest(h, "GET", "/api/v1/openapi.json", { token: null });
  assert.equal(res.status, 200, res.text.slice(0, 300));
  assert.match(res.headers["content-type"] ?? "", /^application\/json/);
  doc = res.json;
  const validator = new Validator();
  const result = await validator.validate(structuredClone(doc));
  assert.ok(result.valid, `the document is not valid OpenAPI: ${JSON.stringify(result.errors, null, 2)}`);
  assert.equal(validator.version, "3.1");
  resolved = validator.resolveRefs();
});

after(async () => {
  await h?.stop();
  await rx?.close();
});

// ---------------------------------------------------------------------------
// A JSON Schema checker for the subset the document uses
// ---------------------------------------------------------------------------

function typeOf(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v; // string, boolean, object
}

/** `schema` with its allOf branches merged into one object schema. */
function flatten(schema) {
  if (!schema.allOf) return schema;
  const merged = { type: "object", properties: {}, required: [] };
  for (const branch of schema.allOf.map(flatten)) {
    Object.assign(merged.properties, branch.properties ?? {});
    merged.required.push(...(branch.required ?? []));
  }
  return merged;
}

/** What is wrong with `value` under `schema`, as a list of "where: problem". */
function problems(value, schema, where) {
  schema = flatten(schema);
  if (schema.anyOf) {
    const each = schema.anyOf.map((s) => problems(value, s, where));
    return each.some((p) => p.length === 0) ? [] : each.flat();
  }
  const out = [];
  const actual = typeOf(value);
  if (schema.type !== undefined) {
    const types = [schema.type].flat();
    const fits = types.includes(actual) || (actual === "integer" && types.includes("number"));
    if (!fits) return [`${where}: ${JSON.stringify(value)?.slice(0, 80)} is not ${types.join(" or ")}`];
  }
  if ("const" in schema && JSON.stringify(value) !== JSON.stringify(schema.const)) {
    out.push(`${where}: ${JSON.stringify(value)} is not ${JSON.stringify(schema.const)}`);
  }
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    out.push(`${where}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  }
  if (actual === "string") {
    if (schema.pattern && !new RegExp(schema.pattern, "u").test(value)) {
      out.push(`${where}: "${value}" does not match ${schema.pattern}`);
    }
    if (schema.format === "date-time" && !RFC3339.test(value)) {
      out.push(`${where}: "${value}" is not an RFC 3339 date-time`);
    }
  }
  if (actual === "array" && schema.items) {
    value.forEach((item, i) => out.push(...problems(item, schema.items, `${where}[${i}]`)));
  }
  if (actual === "object") {
    for (const name of schema.required ?? []) {
      if (!(name in value)) out.push(`${where}: required property ${name} is missing`);
    }
    for (const [name, v] of Object.entries(value)) {
      const own = schema.properties?.[name];
      if (own) out.push(...problems(v, own, `${where}.${name}`));
      else if (typeof schema.additionalProperties === "object") {
        out.push(...problems(v, schema.additionalProperties, `${where}.${name}`));
      } else if (schema.properties && schema.additionalProperties === undefined) {
        out.push(`${where}: property ${name} is not in the schema`);
      }
    }
    if (schema.maxProperties !== undefined && Object.keys(value).length > schema.maxProperties) {
      out.push(`${where}: more than ${schema.maxProperties} properties`);
    }
  }
  return out;
}

test("the checker sees missing, mistyped and undocumented properties", () => {
  const schema = {
    type: "object",
    properties: { id: { type: "string", pattern: "^app_" }, n: { type: ["integer", "null"] } },
    required: ["id", "n"],
  };
  assert.deepEqual(problems({ id: "app_1", n: null }, schema, "b"), []);
  assert.equal(problems({ id: "app_1" }, schema, "b").length, 1);
  assert.equal(problems({ id: "ep_1", n: 1 }, schema, "b").length, 1);
  assert.equal(problems({ id: "app_1", n: "1" }, schema, "b").length, 1);
  assert.equal(problems({ id: "app_1", n: 1, extra: true }, schema, "b").length, 1);
});

// ---------------------------------------------------------------------------
// Calls whose replies are checked against the document
// ---------------------------------------------------------------------------

/**
 * Sends `method` to `template` with its {parameters} from `params`, and checks the reply against
 * the schema the document gives the operation for the reply's status. Resolves with the reply.
 */
async function call(method, template, params = {}, { body, token, query, status } = {}) {
  const operation = resolved.paths[template]?.[method.toLowerCase()];
  assert.ok(operation, `${method} ${template} is not in the document`);
  let urlPath = template.replace(/\{([^}]+)\}/g, (_, name) => {
    assert.ok(name in params, `${method} ${template}: no value for {${name}}`);
    return encodeURIComponent(params[name]);
  });
  if (query) urlPath += "?" + new URLSearchParams(query).toString();
  const res = await rawRequest(h, method, urlPath, { body, token });
  const what = `${method} ${urlPath} (${operation.operationId})`;
  if (status !== undefined) assert.equal(res.status, status, `${what}: ${res.text.slice(0, 500)}`);
  const reply = operation.responses[String(res.status)] ?? operation.responses[`${String(res.status)[0]}XX`];
  assert.ok(reply, `${what}: status ${res.status} is not among the documented ${Object.keys(operation.responses)}`);
  const type = (res.headers["content-type"] ?? "").split(";")[0];
  if (res.status === 204) {
    assert.equal(reply.content, undefined, `${what}: a 204 has no body, but the document gives one`);
  } else {
    const media = reply.content?.[type];
    assert.ok(media, `${what}: ${type} is not a documented content type of a ${res.status}`);
    if (type === "application/json") {
      assert.deepEqual(problems(res.json, media.schema, "body"), [], `${what}: the reply does not fit the document`);
    }
  }
  return res;
}

// ---------------------------------------------------------------------------

describe("the document", () => {
  test("names herald, its version, and a bearer token for every operation but the public ones", () => {
    assert.equal(doc.openapi, "3.1.0");
    assert.equal(doc.info.title, "herald");
    assert.match(doc.info.version, /^\d+\.\d+\.\d+/);
    assert.equal(doc.components.securitySchemes.bearerAuth.scheme, "bearer");
    assert.deepEqual(doc.security, [{ bearerAuth: [] }]);
    const pub = [];
    for (const [template, item] of Object.entries(doc.paths)) {
      for (const m of METHODS) if (item[m]?.security?.length === 0) pub.push(`${m} ${template}`);
    }
    assert.deepEqual(pub.sort(), ["get /api/v1/health", "get /api/v1/openapi.json", "get /metrics"]);
  });

  test("every operation has a unique operationId, a summary, a tag and its path parameters", () => {
    const ids = new Set();
    const tags = new Set(doc.tags.map((t) => t.name));
    for (const [template, item] of Object.entries(resolved.paths)) {
      const inPath = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      for (const m of METHODS) {
        const op = item[m];
        if (!op) continue;
        const what = `${m} ${template}`;
        assert.ok(op.operationId && !ids.has(op.operationId), `${what}: operationId ${op.operationId}`);
        ids.add(op.operationId);
        assert.ok(op.summary, `${what}: summary`);
        assert.ok(op.tags?.length && op.tags.every((t) => tags.has(t)), `${what}: tags ${op.tags}`);
        const declared = (op.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name).sort();
        assert.deepEqual(declared, inPath, `${what}: its path parameters`);
        const success = Object.keys(op.responses).filter((s) => s.startsWith("2"));
        assert.ok(success.length > 0, `${what}: a 2xx reply`);
      }
    }
  });

  test("herald's extensions are marked and say what they are", () => {
    const marked = [];
    const walk = (node, where) => {
      if (!node || typeof node !== "object") return;
      if (node["x-herald-extension"] === true) {
        marked.push(where);
        assert.ok(node.description, `${where}: an extension says what it is`);
      }
      for (const [k, v] of Object.entries(node)) walk(v, `${where}/${k}`);
    };
    walk(doc, "#");
    for (const name of ["signatureScheme", "signatureHeader", "clientCertificate", "health"]) {
      assert.ok(
        marked.includes(`#/components/schemas/EndpointOut/properties/${name}`),
        `EndpointOut.${name} is marked`,
      );
    }
    assert.ok(marked.includes("#/components/schemas/MessageOut/properties/payloadExpired"));
    assert.ok(marked.includes("#/paths//api/v1/app/{app_id}/endpoint/{endpoint_id}/stats/timeline/get"));
  });
});

describe("herald's replies fit the document", () => {
  test("health, metrics and errors", async () => {
    await call("GET", "/api/v1/health", {}, { token: null, status: 204 });
    await call("GET", "/metrics", {}, { token: null, status: 200 });
    await call("GET", "/api/v1/app", {}, { token: null, status: 401 });
    await call("GET", "/api/v1/app/{app_id}", { app_id: "nope" }, { status: 404 });
    await call("POST", "/api/v1/app", {}, { body: {}, status: 422 });
    await call("POST", "/api/v1/app", {}, { body: "{not json", status: 400 });
    await call("GET", "/api/v1/app", {}, { query: { limit: "0" }, status: 422 });
  });

  test("applications, endpoints, messages, attempts, event types and tokens", async () => {
    const uid = uniq("app");
    const app = (await call("POST", "/api/v1/app", {}, { body: { name: "Acme", uid, metadata: { k: "v" } }, status: 201 })).json;
    const app_id = app.id;
    await call("POST", "/api/v1/app", {}, { body: { name: "Acme", uid }, query: { get_if_exists: "true" }, status: 200 });
    await call("POST", "/api/v1/app", {}, { body: { name: "Acme", uid }, status: 409 });
    await call("GET", "/api/v1/app", {}, { query: { order: "descending" }, status: 200 });
    await call("GET", "/api/v1/app/{app_id}", { app_id: uid }, { status: 200 });
    await call("PATCH", "/api/v1/app/{app_id}", { app_id }, { body: { throttleRate: 10 }, status: 200 });
    await call("PUT", "/api/v1/app/{app_id}", { app_id }, { body: { name: "Acme Inc" }, status: 200 });
    const other = uniq("app");
    await call("PUT", "/api/v1/app/{app_id}", { app_id: other }, { body: { name: "Other" }, status: 201 });

    const eventType = uniq("user.created").replaceAll("-", "_");
    const schemas = { 1: { type: "object", examples: [{ hello: "world" }] } };
    await call("POST", "/api/v1/event-type", {}, { body: { name: eventType, description: "a user", schemas }, status: 201 });
    await call("GET", "/api/v1/event-type", {}, { query: { with_content: "true" }, status: 200 });
    await call("GET", "/api/v1/event-type/{event_type_name}", { event_type_name: eventType }, { status: 200 });
    await call("PATCH", "/api/v1/event-type/{event_type_name}", { event_type_name: eventType }, { body: { groupName: "users" }, status: 200 });
    await call("PUT", "/api/v1/event-type/{event_type_name}", { event_type_name: eventType }, { body: { description: "a user", schemas }, status: 200 });

    const E = "/api/v1/app/{app_id}/endpoint";
    const EI = `${E}/{endpoint_id}`;
    const ep = (await call("POST", E, { app_id }, { body: { url: rx.url("/hook"), eventTypes: [eventType], metadata: {} }, status: 201 })).json;
    const endpoint_id = ep.id;
    const ids = { app_id, endpoint_id };
    await call("GET", EI, ids, { status: 200 });
    await call("PATCH", EI, ids, { body: { description: "the hook", signatureScheme: "standard" }, status: 200 });
    await call("PUT", EI, ids, { body: { url: rx.url("/hook"), eventTypes: [eventType], throttleRate: 100 }, status: 200 });
    await call("PUT", EI, { app_id, endpoint_id: uniq("ep") }, { body: { url: rx.url("/other"), disabled: true }, status: 201 });
    await call("GET", `${EI}/secret`, ids, { status: 200 });
    await call("PUT", `${EI}/headers`, ids, { body: { headers: { "x-one": "1", authorization: "secret" } }, status: 204 });
    await call("PATCH", `${EI}/headers`, ids, { body: { headers: { "x-two": "2" }, deleteHeaders: ["x-one"] }, status: 204 });
    await call("GET", `${EI}/headers`, ids, { status: 200 });

    const M = "/api/v1/app/{app_id}/msg";
    const MI = `${M}/{msg_id}`;
    await call("POST", `${M}/precheck/active`, { app_id }, { body: { eventType }, status: 200 });
    const msg = (await call("POST", M, { app_id }, { body: { eventType, eventId: uniq("evt"), payload: { n: 1 }, tags: ["t"] }, status: 202 })).json;
    const msg_id = msg.id;
    await settled(h, app_id, msg_id);
    await call("GET", M, { app_id }, { status: 200 });
    await call("GET", MI, { app_id, msg_id }, { query: { with_content: "false" }, status: 200 });
    await call("GET", `${MI}/endpoint`, { app_id, msg_id }, { status: 200 });
    await call("GET", `${EI}/msg`, ids, { status: 200 });
    await call("GET", E, { app_id }, { query: { with_health: "true" }, status: 200 });
    await call("GET", `${EI}/stats`, ids, { status: 200 });
    await call("GET", `${EI}/stats/timeline`, ids, { query: { bucket: "minute", since: new Date(Date.now() - 600_000).toISOString() }, status: 200 });
    await call("GET", `${EI}/stats/timeline`, ids, { query: { bucket: "week" }, status: 422 });

    const attempts = (await call("GET", "/api/v1/app/{app_id}/attempt/msg/{msg_id}", { app_id, msg_id }, { status: 200 })).json;
    assert.ok(attempts.data.length > 0, "the message was attempted");
    await call("GET", `${MI}/attempt`, { app_id, msg_id }, { query: { with_content: "false" }, status: 200 });
    await call("GET", "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}", ids, { query: { with_msg: "true" }, status: 200 });
    await call("GET", `${MI}/attempt/{attempt_id}`, { app_id, msg_id, attempt_id: attempts.data[0].id }, { status: 200 });

    await call("POST", `${MI}/endpoint/{endpoint_id}/resend`, { ...ids, msg_id }, { status: 202 });
    await call("POST", `${EI}/send-example`, ids, { body: { eventType }, status: 202 });
    await call("POST", `${EI}/recover`, ids, { body: { since: new Date(Date.now() - 3_600_000).toISOString() }, status: 202 });
    await call("POST", `${EI}/secret/rotate`, ids, { body: {}, status: 204 });

    const access = (await call("POST", "/api/v1/auth/app-portal-access/{app_id}", { app_id }, { body: { expiry: 3600 }, status: 200 })).json;
    await call("GET", "/api/v1/auth/whoami", {}, { status: 200 });
    await call("GET", "/api/v1/auth/whoami", {}, { token: access.token, status: 200 });
    await call("DELETE", "/api/v1/app/{app_id}", { app_id }, { token: access.token, status: 403 });
    await call("POST", "/api/v1/auth/logout", {}, { token: access.token, status: 204 });
    await call("POST", "/api/v1/auth/app/{app_id}/expire-all", { app_id }, { body: {}, status: 204 });

    const O = "/api/v1/operational-webhook/endpoint";
    const op = (await call("POST", O, {}, { body: { url: rx.url("/ops") }, status: 201 })).json;
    await call("GET", O, {}, { status: 200 });
    await call("GET", `${O}/{endpoint_id}`, { endpoint_id: op.id }, { status: 200 });
    await call("DELETE", `${O}/{endpoint_id}`, { endpoint_id: op.id }, { status: 204 });

    await call("DELETE", EI, ids, { status: 204 });
    await call("DELETE", "/api/v1/event-type/{event_type_name}", { event_type_name: eventType }, { query: { expunge: "true" }, status: 204 });
    await call("DELETE", "/api/v1/app/{app_id}", { app_id }, { status: 204 });
    await call("DELETE", "/api/v1/app/{app_id}", { app_id: other }, { status: 204 });
  });

  test("background tasks, expunging, replays, event type imports, environments and statistics", async () => {
    const T = "/api/v1/background-task/{task_id}";
    /** Polls the task until it has ended, checking each reply; resolves with the last. */
    const ended = (task_id) =>
      eventually(async () => {
        const t = (await call("GET", T, { task_id }, { status: 200 })).json;
        return t.status === "running" ? null : t;
      }, { message: `task ${task_id} ended` });

    const flag = uniq("beta").replaceAll("-", "_");
    const eventType = uniq("order.paid").replaceAll("-", "_");
    await call("POST", "/api/v1/event-type", {}, { body: { name: eventType, featureFlags: [flag] }, status: 201 });
    await call("PATCH", "/api/v1/event-type/{event_type_name}", { event_type_name: eventType }, { body: { featureFlag: flag }, status: 200 });

    const app_id = (await call("POST", "/api/v1/app", {}, { body: { name: "Tasks" }, status: 201 })).json.id;
    const E = "/api/v1/app/{app_id}/endpoint/{endpoint_id}";
    const endpoint_id = (await call("POST", "/api/v1/app/{app_id}/endpoint", { app_id }, { body: { url: rx.url("/tasks") }, status: 201 })).json.id;
    const ids = { app_id, endpoint_id };
    const M = "/api/v1/app/{app_id}/msg";
    const eventId = uniq("evt");
    const msg_id = (await call("POST", M, { app_id }, { body: { eventType, eventId, payload: { n: 1 } }, status: 202 })).json.id;
    await settled(h, app_id, msg_id);
    const since = new Date(Date.now() - 3_600_000).toISOString();

    const access = (await call("POST", "/api/v1/auth/app-portal-access/{app_id}", { app_id }, { body: { featureFlags: [flag] }, status: 200 })).json;
    await call("GET", "/api/v1/event-type/{event_type_name}", { event_type_name: eventType }, { token: access.token, status: 200 });

    const recover = (await call("POST", `${E}/recover`, ids, { body: { since }, status: 202 })).json;
    assert.equal(recover.status, "running");
    await ended(recover.id);
    const replay = (await call("POST", `${E}/replay-missing`, ids, { body: { since }, status: 202 })).json;
    await ended(replay.id);
    const bulk = (await call("POST", `${E}/bulk-replay`, ids, { body: { since, eventTypes: [eventType], statusCodeClass: 200 }, status: 202 })).json;
    await ended(bulk.id);
    await call("POST", `${E}/bulk-replay`, ids, { body: { since, statusCodeClass: 250 }, status: 422 });
    await call("GET", "/api/v1/background-task", {}, { status: 200 });
    await call("GET", "/api/v1/background-task", {}, { query: { status: "finished", task: "endpoint.recover", order: "ascending" }, status: 200 });
    await call("GET", "/api/v1/background-task", {}, { token: access.token, status: 200 });
    await call("GET", "/api/v1/background-task", {}, { query: { task: "nope" }, status: 422 });
    await call("GET", T, { task_id: "qtask_nope" }, { status: 404 });

    const attempts = (await call("GET", "/api/v1/app/{app_id}/attempt/msg/{msg_id}", { app_id, msg_id }, { status: 200 })).json;
    const attempt_id = attempts.data[0].id;
    await call("DELETE", `${M}/{msg_id}/attempt/{attempt_id}/content`, { app_id, msg_id, attempt_id }, { status: 204 });
    const expunged = (await call("GET", `${M}/{msg_id}/attempt/{attempt_id}`, { app_id, msg_id, attempt_id }, { status: 200 })).json;
    assert.equal(expunged.responseExpunged, true);
    await call("DELETE", `${M}/{msg_id}/content`, { app_id, msg_id: eventId }, { status: 204 });
    await call("DELETE", `${M}/{msg_id}/content`, { app_id, msg_id: "msg_nope" }, { status: 404 });
    const results = (await call("POST", `${M}/bulk-expunge`, { app_id }, { body: { ids: [msg_id, "nope"] }, status: 200 })).json;
    assert.deepEqual(results, { results: { [msg_id]: "expunged", nope: "not-found" } });
    const purge = (await call("POST", `${M}/expunge-all-contents`, { app_id }, { status: 202 })).json;
    await ended(purge.id);

    const stats = (await call("POST", "/api/v1/stats/usage/app", {}, { body: { since, until: new Date(Date.now() + 60_000).toISOString(), appIds: [app_id, "nope"] }, status: 202 })).json;
    assert.deepEqual(stats.unresolvedAppIds, ["nope"]);
    await ended(stats.id);
    await call("POST", "/api/v1/stats/usage/app", {}, { body: { since, until: since }, status: 422 });
    const aggregate = (await call("PUT", "/api/v1/stats/usage/event-types", {}, { status: 202 })).json;
    await ended(aggregate.id);

    const imported = uniq("invoice.sent").replaceAll("-", "_");
    const spec = {
      openapi: "3.1.0",
      info: { title: "t", version: "1" },
      webhooks: {
        [imported]: {
          post: {
            description: "an invoice was sent",
            "x-svix-feature-flags": [flag],
            requestBody: { content: { "application/json": { schema: { $ref: "#/components/schemas/Invoice" } } } },
          },
        },
      },
      components: { schemas: { Invoice: { type: "object", properties: { id: { type: "string" } } } } },
    };
    const I = "/api/v1/event-type/import/openapi";
    const dry = (await call("POST", I, {}, { body: { spec, dryRun: true }, status: 200 })).json;
    assert.equal(dry.data.to_modify.length, 1);
    await call("POST", I, {}, { body: { specRaw: JSON.stringify(spec) }, status: 200 });
    await call("POST", I, {}, { body: { spec: { openapi: "3.1.0" } }, status: 422 });

    const env = (await call("POST", "/api/v1/environment/export", {}, { status: 200 })).json;
    assert.ok(env.eventTypes.some((t) => t.name === imported));
    await call("POST", "/api/v1/environment/import", {}, { body: env, status: 204 });
    await call("POST", "/api/v1/environment/import", {}, { body: { eventTypes: [{ name: "" }] }, status: 422 });
    await call("POST", "/api/v1/environment/export", {}, { token: access.token, status: 404 });

    // A task whose endpoint went away fails, and says why.
    const doomed = (await call("POST", `${E}/recover`, ids, { body: { since }, status: 202 })).json;
    await call("DELETE", E, ids, { status: 204 });
    const last = await ended(doomed.id);
    if (last.status === "failed") assert.ok(last.data.error);

    await call("DELETE", "/api/v1/app/{app_id}", { app_id }, { status: 204 });
    for (const name of [eventType, imported]) {
      await call("DELETE", "/api/v1/event-type/{event_type_name}", { event_type_name: name }, { query: { expunge: "true" }, status: 204 });
    }
  });
});

// ---------------------------------------------------------------------------
// Every call the svix SDK can make is in the document (and so, by api_test, served), but for
// the families docs/API.md's "Differences from Svix" names as not served.

describe("the svix SDK's surface", () => {
  test("every route the SDK calls is documented, but for the Cloud-only families", async () => {
    const fs = await import("node:fs");
    const { createRequire } = await import("node:module");
    const sdkFile = createRequire(import.meta.url).resolve("svix");
    const source = fs.readFileSync(sdkFile, "utf8");
    const calls = [...source.matchAll(/new SvixRequest\("([A-Z]+)", "(\/api\/v1\/[^"]*)"\)/g)].map((m) => [m[1], m[2]]);
    assert.ok(calls.length > 100, `only ${calls.length} routes found in ${sdkFile}`);
    const shape = (p) => p.replace(/\{[^}]+\}/g, "{}");
    const documented = new Set();
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const m of METHODS) if (item[m]) documented.add(`${m.toUpperCase()} ${shape(p)}`);
    }
    const notServed =
      /\/(stream|connector|destination|integration|autoconfig|auto-config|poller|polling-endpoint|transformation)(\/|$)|\/auth\/stream/;
    const missing = calls
      .filter(([m, p]) => !notServed.test(p) && !documented.has(`${m} ${shape(p)}`))
      .map(([m, p]) => `${m} ${p}`);
    assert.deepEqual([...new Set(missing)], [], "SDK calls herald neither documents nor lists as not served");
    // The exclusions name only what the SDK has: each family matches at least one call.
    for (const family of ["stream", "connector", "destination", "integration", "autoconfig", "poller", "transformation"]) {
      assert.ok(calls.some(([, p]) => p.includes(`/${family}`)), `no SDK call under /${family}`);
    }
  });
});
