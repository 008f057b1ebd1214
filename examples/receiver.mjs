// A webhook receiver that verifies herald's Standard Webhooks signature with nothing but
// Node's standard library. Usage: WEBHOOK_SECRET=whsec_... node examples/receiver.mjs [port]
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const secret = process.env.WEBHOOK_SECRET;
if (!secret?.startsWith("whsec_")) {
  console.error("set WEBHOOK_SECRET to the endpoint's secret (whsec_...)");
  process.exit(2);
}
const key = Buffer.from(secret.slice("whsec_".length), "base64");
const toleranceSeconds = 5 * 60;

// True if any v1 signature in the header matches HMAC-SHA256(key, id.timestamp.body).
function verify(id, timestamp, body, signatureHeader) {
  const age = Math.abs(Date.now() / 1000 - Number(timestamp));
  if (!Number.isFinite(age) || age > toleranceSeconds) return false;
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest();
  return signatureHeader.split(" ").some((entry) => {
    const [version, signature] = entry.split(",", 2);
    if (version !== "v1" || !signature) return false;
    const given = Buffer.from(signature, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks); // verify the raw bytes, never re-serialized JSON
    const ok = verify(
      req.headers["webhook-id"] ?? "",
      req.headers["webhook-timestamp"] ?? "",
      body,
      req.headers["webhook-signature"] ?? "",
    );
    console.log(`${ok ? "verified" : "REJECTED"} ${req.headers["webhook-id"]} ${body}`);
    res.writeHead(ok ? 204 : 401).end();
  });
}).listen(Number(process.argv[2] ?? 9000), "127.0.0.1");
