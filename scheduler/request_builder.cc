#include "scheduler/request_builder.h"

#include <cstdio>

#include "core/headers.h"
#include "core/types.h"
#include "scheduler/target_cache.h"

namespace herald {
namespace {

// Appends `text` as a JSON string.
void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
          out += esc;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace

std::string recorded_headers(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string out = "{";
  for (const auto& [name, value] : headers) {
    if (out.size() > 1) out += ',';
    append_json_string(out, name);
    out += ':';
    append_json_string(out, is_sensitive_header(name) ? kMaskedHeaderValue : value);
  }
  out += '}';
  return out;
}

BuiltRequest build_request(const Delivery& d, const Target& target,
                           std::shared_ptr<const std::string> body, int64_t timestamp_s,
                           int64_t timeout_ms, int64_t connect_timeout_ms) {
  const Endpoint& ep = target.endpoint;
  BuiltRequest out;
  DeliveryJob& job = out.job;
  job.url = ep.url;
  job.timeout_ms = timeout_ms;
  job.connect_timeout_ms = connect_timeout_ms;
  job.tls = target.tls;
  const std::string ts = std::to_string(timestamp_s);
  job.headers.reserve(ep.headers.size() + 8);
  for (const auto& [name, value] : ep.headers) job.headers.emplace_back(name, value);
  job.headers.emplace_back("content-type", "application/json");
  job.headers.emplace_back("user-agent", kUserAgent);  // sent as given, so recorded as sent
  // The id and timestamp go with every scheme, so receivers can deduplicate and refuse stale
  // deliveries whatever signs them.
  job.headers.emplace_back("webhook-id", d.msg_id);
  job.headers.emplace_back("webhook-timestamp", ts);
  job.headers.emplace_back("svix-id", d.msg_id);
  job.headers.emplace_back("svix-timestamp", ts);
  target.signer.sign(d.msg_id, timestamp_s, *body, job.headers);
  job.body = std::move(body);
  out.recorded_headers_json = recorded_headers(job.headers);
  return out;
}

}  // namespace herald
