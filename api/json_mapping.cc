#include "api/json_mapping.h"

#include <algorithm>
#include <cctype>

#include "api/errors.h"
#include "core/ascii.h"
#include "core/certificates.h"
#include "core/encoding.h"
#include "core/headers.h"
#include "core/ids.h"
#include "core/time_format.h"

namespace herald {

using json = nlohmann::ordered_json;

json ApiError::body() const {
  if (status_ == 422) return json{{"code", code_}, {"detail", validation_}};
  return json{{"code", code_}, {"detail", what()}};
}

ApiError not_found(const std::string& what) {
  return ApiError(404, "not_found", what + " not found");
}
ApiError conflict(const std::string& detail) {
  return ApiError(409, "conflict", detail);
}
ApiError bad_request(const std::string& detail) {
  return ApiError(400, "bad_request", detail);
}

ApiError invalid_field(const std::string& field, const std::string& msg, const std::string& type) {
  return ApiError(json::array({json{{"loc", {"body", field}}, {"msg", msg}, {"type", type}}}));
}

ApiError invalid_query(const std::string& param, const std::string& msg) {
  return ApiError(
      json::array({json{{"loc", {"query", param}}, {"msg", msg}, {"type", "value_error"}}}));
}

namespace {

constexpr int kMaxJsonDepth = 64;

// True if `text` nests arrays and objects deeper than kMaxJsonDepth (strings are skipped).
bool too_deep(std::string_view text) {
  int depth = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// Why `text`, which does not parse, is not JSON: where its encoding breaks, or where its syntax
// does (a byte offset, never the bytes themselves, which may not be UTF-8).
std::string json_problem(const std::string& text, const std::string& what) {
  if (auto at = first_invalid_utf8(text)) {
    return what + " is not valid JSON: it is not UTF-8 (byte " + std::to_string(*at) +
           " starts no UTF-8 character)";
  }
  try {
    const auto parsed = nlohmann::json::parse(text);  // throws, saying where
    static_cast<void>(parsed);
  } catch (const nlohmann::json::parse_error& e) {
    return what + " is not valid JSON (syntax error at byte " + std::to_string(e.byte) + ")";
  }
  return what + " is not valid JSON";
}

template <typename T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

}  // namespace

std::optional<JsonIn> parse_client_json(const std::string& text, const std::string& what,
                                        std::string& problem) {
  if (too_deep(text)) {
    problem = what + " nests JSON deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    return std::nullopt;
  }
  JsonIn parsed = JsonIn::parse(text, nullptr, false);
  if (parsed.is_discarded()) {
    problem = json_problem(text, what);
    return std::nullopt;
  }
  return parsed;
}

json to_json(const Application& a) {
  json j{{"id", a.id},
         {"uid", opt(a.uid)},
         {"name", a.name},
         {"metadata", a.metadata},
         {"createdAt", format_rfc3339(a.created_at)},
         {"updatedAt", format_rfc3339(a.updated_at)}};
  if (a.throttle_rate) j["throttleRate"] = *a.throttle_rate;
  return j;
}

json to_json(const Endpoint& e) {
  json j{{"id", e.id},
         {"uid", opt(e.uid)},
         {"url", e.url},
         {"description", e.description},
         {"disabled", e.disabled},
         {"eventTypes", opt(e.event_types)},
         {"filterTypes", opt(e.event_types)},
         {"channels", opt(e.channels)},
         {"metadata", e.metadata},
         {"createdAt", format_rfc3339(e.created_at)},
         {"updatedAt", format_rfc3339(e.updated_at)},
         {"version", 1}};
  if (e.throttle_rate) j["throttleRate"] = *e.throttle_rate;
  if (e.disabled_reason) j["disabledReason"] = *e.disabled_reason;
  j["signatureScheme"] = scheme_name(e.signature_scheme);
  j["signatureHeader"] = opt(e.signature_header);
  // Write-only: what the certificate says of itself, never its key.
  json cert = nullptr;
  if (e.client_cert) {
    if (auto info = certificate_info(*e.client_cert)) {
      cert = json{{"subject", info->subject},
                  {"fingerprint", info->fingerprint},
                  {"expiresAt", format_rfc3339(info->not_after_ms)}};
    }
  }
  j["clientCertificate"] = cert;
  return j;
}

json to_json(const EventType& e, bool with_content) {
  json j{{"name", e.name},
         {"description", e.description},
         {"archived", e.archived},
         {"deprecated", e.deprecated},
         {"groupName", opt(e.group_name)},
         {"featureFlags", opt(e.feature_flags)},
         // Svix's older single flag, for clients that read only it: set when there is one.
         {"featureFlag", e.feature_flags && e.feature_flags->size() == 1
                             ? json(e.feature_flags->front())
                             : json(nullptr)},
         {"createdAt", format_rfc3339(e.created_at)},
         {"updatedAt", format_rfc3339(e.updated_at)}};
  j["schemas"] = with_content && e.schemas_json ? json::parse(*e.schemas_json) : json(nullptr);
  return j;
}

json to_json(const Message& m, bool with_content) {
  json j{{"id", m.id},
         {"eventId", opt(m.event_id)},
         {"eventType", m.event_type},
         {"channels", opt(m.channels)},
         {"tags", opt(m.tags)},
         {"timestamp", format_rfc3339(m.timestamp)},
         {"deliverAt", m.deliver_at ? json(format_rfc3339(*m.deliver_at)) : json(nullptr)}};
  j["payload"] = with_content && !m.payload.empty() ? json::parse(m.payload) : json::object();
  if (m.payload_expired) j["payloadExpired"] = true;  // purged by retention, or expunged
  return j;
}

json to_json(const BackgroundTask& t) {
  return json{{"id", t.id},
              {"status", task_status_text(t.status)},
              {"task", t.kind},
              {"data", json::parse(t.data_json, nullptr, false)},
              {"updatedAt", format_rfc3339(t.updated_at)}};
}

json to_json(const Attempt& a, bool with_content) {
  json j{{"id", a.id},
         {"msgId", a.msg_id},
         {"endpointId", a.endpoint_id},
         {"url", a.url},
         {"response", with_content ? a.response : std::string()},
         {"responseStatusCode", a.response_status_code},
         {"responseDurationMs", a.response_duration_ms},
         {"status", static_cast<int>(a.status)},
         {"statusText", status_text(a.status)},
         {"triggerType", static_cast<int>(a.trigger)},
         {"timestamp", format_rfc3339(a.timestamp)}};
  if (a.response_expunged) j["responseExpunged"] = true;  // deleted through the API
  return j;
}

json to_json(const DeliveryStats& s) {
  return json{{"success", s.success},
              {"pending", s.pending},
              {"sending", s.sending},
              {"fail", s.fail},
              {"canceled", 0}};
}

json masked_headers(const std::string& headers_json) {
  json headers = json::parse(headers_json, nullptr, false);
  if (!headers.is_object()) return json::object();
  for (auto& [name, value] : headers.items()) {
    if (is_sensitive_header(name)) value = kMaskedHeaderValue;
  }
  return headers;
}

BodyReader::BodyReader(const nlohmann::json& body) : owned_(JsonIn(body)), body_(*owned_) {
  if (!body_.is_object()) {
    throw ApiError(json::array({json{{"loc", {"body"}},
                                     {"msg", "the body must be a JSON object"},
                                     {"type", "type_error.dict"}}}));
  }
}

BodyReader::BodyReader(const JsonIn& body) : body_(body) {
  if (!body_.is_object()) {
    throw ApiError(json::array({json{{"loc", {"body"}},
                                     {"msg", "the body must be a JSON object"},
                                     {"type", "type_error.dict"}}}));
  }
}

BodyReader::BodyReader(const JsonIn& body, json loc) : body_(body), loc_(std::move(loc)) {
  if (!body_.is_object()) {
    throw ApiError(json::array(
        {json{{"loc", loc_}, {"msg", "must be a JSON object"}, {"type", "type_error.dict"}}}));
  }
}

bool BodyReader::has(const char* field) const {
  auto it = body_.find(field);
  return it != body_.end() && !it->is_null();
}

bool BodyReader::present(const char* field) const {
  return body_.contains(field);
}

const JsonIn* BodyReader::raw(const char* field) const {
  auto it = body_.find(field);
  if (it == body_.end() || it->is_null()) return nullptr;
  return &*it;
}

void BodyReader::error(const char* field, const std::string& msg, const std::string& type) {
  json loc = loc_;
  loc.push_back(field);
  error_at(std::move(loc), msg, type);
}

void BodyReader::error_at(json loc, const std::string& msg, const std::string& type) {
  errors_.push_back(json{{"loc", std::move(loc)}, {"msg", msg}, {"type", type}});
}

void BodyReader::absorb(const BodyReader& nested) {
  for (const auto& e : nested.errors_) errors_.push_back(e);
}

void BodyReader::finish() const {
  if (!errors_.empty()) throw ApiError(errors_);
}

std::optional<std::string> BodyReader::opt_string(const char* field, size_t max_len) {
  const JsonIn* v = raw(field);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) {
    error(field, "must be a string", "type_error.str");
    return std::nullopt;
  }
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() > max_len) {
    error(field, "must be at most " + std::to_string(max_len) + " characters",
          "value_error.any_str.max_length");
    return std::nullopt;
  }
  return s;
}

std::optional<TimeMs> BodyReader::opt_time(const char* field) {
  auto text = opt_string(field, 64);
  if (!text) return std::nullopt;
  auto t = parse_rfc3339(*text);
  if (!t) error(field, "must be an RFC 3339 date-time", "value_error.datetime");
  return t;
}

std::optional<TimeMs> BodyReader::req_time(const char* field) {
  if (!has(field)) {
    error(field, "field required", "value_error.missing");
    return std::nullopt;
  }
  return opt_time(field);
}

std::string BodyReader::req_string(const char* field, size_t max_len) {
  if (!has(field)) {
    error(field, "field required", "value_error.missing");
    return {};
  }
  auto s = opt_string(field, max_len);
  if (s && s->empty()) {
    error(field, "must not be empty", "value_error.any_str.min_length");
    return {};
  }
  return s.value_or("");
}

std::optional<int64_t> BodyReader::opt_int(const char* field, int64_t min, int64_t max) {
  const JsonIn* v = raw(field);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer()) {
    error(field, "must be an integer", "type_error.integer");
    return std::nullopt;
  }
  int64_t n = v->get<int64_t>();
  if (n < min || n > max) {
    error(field, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return std::nullopt;
  }
  return n;
}

std::optional<bool> BodyReader::opt_bool(const char* field) {
  const JsonIn* v = raw(field);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) {
    error(field, "must be a boolean", "type_error.bool");
    return std::nullopt;
  }
  return v->get<bool>();
}

std::optional<std::vector<std::string>> BodyReader::opt_string_list(const char* field,
                                                                    size_t max_items,
                                                                    size_t max_item_len) {
  const JsonIn* v = raw(field);
  if (v == nullptr) return std::nullopt;
  if (!v->is_array()) {
    error(field, "must be a list of strings", "type_error.list");
    return std::nullopt;
  }
  if (v->size() > max_items) {
    error(field, "must have at most " + std::to_string(max_items) + " items");
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const auto& item : *v) {
    if (!item.is_string() || item.get_ref<const std::string&>().size() > max_item_len) {
      error(field,
            "items must be strings of at most " + std::to_string(max_item_len) + " characters",
            "type_error.str");
      return std::nullopt;
    }
    auto s = item.get<std::string>();
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
  }
  return out;
}

std::optional<std::vector<std::string>> BodyReader::opt_name_list(const char* field,
                                                                  size_t max_items,
                                                                  size_t max_len) {
  auto names = opt_string_list(field, max_items, max_len);
  if (names) {
    for (const auto& n : *names) {
      if (!valid_name(n)) {
        error(field, "'" + n + "' is not a valid name (A-Z a-z 0-9 _ . -)");
        break;
      }
    }
    if (names->empty()) names.reset();
  }
  return names;
}

std::optional<std::map<std::string, std::string>> BodyReader::opt_string_map(const char* field,
                                                                             size_t max_entries,
                                                                             size_t max_len) {
  const JsonIn* v = raw(field);
  if (v == nullptr) return std::nullopt;
  if (!v->is_object()) {
    error(field, "must be an object of strings", "type_error.dict");
    return std::nullopt;
  }
  if (v->size() > max_entries) {
    error(field, "must have at most " + std::to_string(max_entries) + " entries");
    return std::nullopt;
  }
  std::map<std::string, std::string> out;
  for (const auto& [k, item] : v->items()) {
    if (!item.is_string()) {
      error(field, "values must be strings", "type_error.str");
      return std::nullopt;
    }
    if (k.size() > max_len || item.get_ref<const std::string&>().size() > max_len) {
      error(field, "keys and values must be at most " + std::to_string(max_len) + " characters");
      return std::nullopt;
    }
    out[k] = item.get<std::string>();
  }
  return out;
}

namespace {

constexpr size_t kMaxSchemaBytes = 64 * 1024;
constexpr size_t kMaxFeatureFlags = 100;

}  // namespace

std::string read_event_type_name(BodyReader& r) {
  std::string name = r.req_string("name");
  if (!name.empty() && !valid_name(name)) {
    r.error("name", "must be 1 to 256 of A-Z a-z 0-9 _ . -");
  }
  return name;
}

void read_event_type_fields(BodyReader& r, EventType& et, bool patch) {
  if (!patch || r.present("description"))
    et.description = r.opt_string("description", 1024).value_or("");
  if (!patch || r.present("archived")) et.archived = r.opt_bool("archived").value_or(false);
  if (!patch || r.present("deprecated")) et.deprecated = r.opt_bool("deprecated").value_or(false);
  if (!patch || r.present("groupName")) et.group_name = r.opt_string("groupName");
  if (!patch || r.present("schemas")) {
    et.schemas_json.reset();
    if (const JsonIn* schemas = r.raw("schemas")) {
      if (!schemas->is_object()) {
        r.error("schemas", "must be an object", "type_error.dict");
      } else {
        et.schemas_json = schemas->dump();
        if (et.schemas_json->size() > kMaxSchemaBytes) r.error("schemas", "too large");
      }
    }
  }
  // Older clients send one `featureFlag`: a list of that one. An EventTypeOut sent back has
  // both, agreeing.
  if (!patch || r.present("featureFlags") || r.present("featureFlag")) {
    et.feature_flags = r.opt_name_list("featureFlags", kMaxFeatureFlags);
    if (auto flag = r.opt_string("featureFlag")) {
      if (!valid_name(*flag)) {
        r.error("featureFlag", "must be 1 to 256 of A-Z a-z 0-9 _ . -");
      } else if (!r.has("featureFlags")) {
        et.feature_flags = std::vector<std::string>{*flag};
      } else if (et.feature_flags != std::optional(std::vector<std::string>{*flag})) {
        r.error("featureFlag", "disagrees with featureFlags: send one of them");
      }
    }
  }
}

namespace {

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

}  // namespace

bool valid_uid(const std::string& uid) {
  if (uid.empty() || uid.size() > 256) return false;
  if (!std::all_of(uid.begin(), uid.end(), name_char)) return false;
  // A uid that looked like an id would make addressing ambiguous.
  return !(is_id_with_prefix(uid, kAppPrefix) || is_id_with_prefix(uid, kEndpointPrefix) ||
           is_id_with_prefix(uid, kMessagePrefix));
}

bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= 256 && std::all_of(name.begin(), name.end(), name_char);
}

std::optional<std::string> url_problem(const std::string& url) {
  if (url.size() > 2048) return "the URL must be at most 2048 characters";
  const std::string lower = ascii_lower(url);
  size_t scheme_len;
  if (lower.rfind("http://", 0) == 0) {
    scheme_len = 7;
  } else if (lower.rfind("https://", 0) == 0) {
    scheme_len = 8;
  } else {
    return "the URL must start with http:// or https://";
  }
  size_t host_end = url.find_first_of("/?#", scheme_len);
  std::string authority = url.substr(
      scheme_len, host_end == std::string::npos ? std::string::npos : host_end - scheme_len);
  if (authority.empty()) return "the URL has no host";
  if (authority.find('@') != std::string::npos) return "the URL must not contain credentials";
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return "the URL contains spaces or control characters";
  }
  std::string host = authority;
  if (host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string::npos) return "the URL has a malformed IPv6 host";
    std::string rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return "the URL has a malformed host";
    host = host.substr(0, close + 1);
    authority = rest;
  } else {
    size_t colon = host.find(':');
    authority = colon == std::string::npos ? "" : host.substr(colon);
    host = host.substr(0, colon);
  }
  if (host.empty()) return "the URL has no host";
  if (!authority.empty()) {
    std::string port = authority.substr(1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(port) < 1 || std::stoi(port) > 65535) {
      return "the URL has an invalid port";
    }
  }
  return std::nullopt;
}

std::optional<std::string> header_name_problem(const std::string& name) {
  // What herald sets itself, and the hop-by-hop headers (RFC 9110 7.6.1), which are about one
  // connection and not for an endpoint.
  static const char* kReserved[] = {
      "content-type",       "content-length",      "host",    "user-agent",     "webhook-id",
      "webhook-timestamp",  "webhook-signature",   "svix-id", "svix-timestamp", "svix-signature",
      "transfer-encoding",  "connection",          "expect",  "keep-alive",     "proxy-connection",
      "proxy-authenticate", "proxy-authorization", "te",      "trailer",        "upgrade"};
  if (name.empty() || name.size() > 256) return "header names must be 1 to 256 characters";
  static const std::string kTokenChars = "!#$%&'*+-.^_`|~";
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && kTokenChars.find(c) == std::string::npos) {
      return "'" + name + "' is not a valid header name";
    }
  }
  const std::string lower = ascii_lower(name);
  for (const char* r : kReserved) {
    if (lower == r) return "'" + name + "' is set by herald or is hop-by-hop, and cannot be used";
  }
  return std::nullopt;
}

std::optional<std::string> header_problem(const std::string& name, const std::string& value) {
  if (auto problem = header_name_problem(name)) return problem;
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') return "header values must not contain line breaks";
  }
  return std::nullopt;
}

}  // namespace herald
