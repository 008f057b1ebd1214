// /api/v1/app/{app}/endpoint: endpoints, their secrets, headers and stats; and
// /api/v1/operational-webhook/endpoint, the same for operational webhooks.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <string_view>

#include "api/errors.h"
#include "api/json_mapping.h"
#include "api/server.h"
#include "core/ascii.h"
#include "core/certificates.h"
#include "core/encoding.h"
#include "core/headers.h"
#include "core/ids.h"
#include "core/signer.h"
#include "core/signing.h"
#include "core/time_format.h"
#include "db/attempt_store.h"
#include "db/database.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/operational_webhooks.h"
#include "db/queue_store.h"
#include "db/session.h"
#include "db/tasks.h"

namespace herald {
namespace {

using json = nlohmann::ordered_json;

constexpr size_t kMaxEventTypes = 256;
constexpr size_t kMaxChannels = 10;
constexpr size_t kMaxHeaders = 32;
constexpr size_t kMaxHeaderLen = 4096;
constexpr size_t kMaxMetadataEntries = 64;
constexpr size_t kMaxMetadataLen = 1024;
constexpr int64_t kDefaultGraceSeconds = 24 * 3600;
constexpr int64_t kMaxGraceSeconds = 7 * 24 * 3600;
constexpr int64_t kHealthWindowMs = 24 * 3600 * 1000;
constexpr int64_t kMaxTimelineBuckets = 1000;

std::optional<std::map<std::string, std::string>> read_headers(BodyReader& r, const char* field) {
  auto headers = r.opt_string_map(field, kMaxHeaders, kMaxHeaderLen);
  if (headers) {
    for (const auto& [name, value] : *headers) {
      if (auto problem = header_problem(name, value)) r.error(field, *problem);
    }
  }
  return headers;
}

// The scheme is https, in any case.
bool is_https_url(const std::string& url) {
  return starts_with_ascii_ci(url, "https://");
}

// What a body asks of an endpoint's signing.
struct SigningChange {
  std::optional<SignatureScheme> scheme;  // signatureScheme, when given
  std::optional<SigningKey> key;          // secret (or a rotation's key), when given
  std::string key_text;                   // that key as written
  // The field a clash between the signature's header and the endpoint's own headers is
  // blamed on: the one of the two the body set (signatureHeader first), else the scheme.
  const char* header_field = "signatureScheme";
};

// What a body asks of an endpoint's client certificate (clientCertificate, herald's): nothing
// (absent, which a PUT leaves as it is too, as Svix's SDKs do not know the field), to drop it
// (null), or to present `cert` with `key` from now on.
struct ClientCertChange {
  bool given = false;
  std::optional<std::string> cert, key;
};

constexpr size_t kMaxCertPem = 64 * 1024;
constexpr size_t kMaxKeyPem = 16 * 1024;

ClientCertChange read_client_cert(BodyReader& r, TimeMs now) {
  ClientCertChange change;
  if (!r.present("clientCertificate")) return change;
  change.given = true;
  const JsonIn* v = r.raw("clientCertificate");
  if (v == nullptr) return change;  // null: none from now on
  const char* field = "clientCertificate";
  if (!v->is_object() || !v->contains("cert") || !v->contains("key") || !(*v)["cert"].is_string() ||
      !(*v)["key"].is_string()) {
    r.error(field, "must be {\"cert\": PEM certificate, \"key\": PEM private key}, or null");
    return change;
  }
  std::string cert = (*v)["cert"].get<std::string>();
  std::string key = (*v)["key"].get<std::string>();
  if (cert.size() > kMaxCertPem || key.size() > kMaxKeyPem) {
    r.error(field, "cert must be at most 64 KB and key at most 16 KB");
    return change;
  }
  std::string part;
  if (auto problem = client_certificate_problem(cert, key, now, &part)) {
    r.error(field, part + ": " + *problem);
    return change;
  }
  change.cert = std::move(cert);
  change.key = std::move(key);
  return change;
}

std::string key_kind_text(KeyKind kind) {
  return kind == KeyKind::kEd25519 ? "a whsk_ Ed25519 key" : "a whsec_ secret";
}

// Reads a whsec_ or whsk_ secret from `field`, and checks it fits `scheme` when one is asked.
std::optional<SigningKey> read_secret(BodyReader& r, const char* field,
                                      std::optional<SignatureScheme> scheme, std::string& written) {
  auto text = r.opt_string(field, 200);
  if (!text) return std::nullopt;
  written = *text;
  std::string problem;
  auto key = parse_secret(*text, &problem);
  if (!key) {
    r.error(field, problem);
  } else if (scheme && key_kind_for(*scheme) != key->kind) {
    r.error(field, std::string("signatureScheme ") + scheme_name(*scheme) + " signs with " +
                       key_kind_text(key_kind_for(*scheme)) + " (or none: herald makes one)");
  }
  return key;
}

std::optional<SignatureScheme> read_scheme(BodyReader& r) {
  auto name = r.opt_string("signatureScheme", 64);
  if (!name) return std::nullopt;
  auto scheme = parse_scheme(*name);
  if (!scheme) r.error("signatureScheme", "must be one of standard, stripe, github, ed25519");
  return scheme;
}

// The scheme an endpoint signs in after `change`: the one asked for, else the one its new key
// implies (a whsk_ key means ed25519; a whsec_ key given to an ed25519 endpoint, standard),
// else the one it has.
SignatureScheme scheme_after(const SigningChange& change, SignatureScheme current) {
  if (change.scheme) return *change.scheme;
  if (change.key && change.key->kind != key_kind_for(current)) {
    return change.key->kind == KeyKind::kEd25519 ? SignatureScheme::kEd25519
                                                 : SignatureScheme::kStandard;
  }
  return current;
}

// Throws 422 if `change` gives a whsec_ secret that Stripe's or GitHub's libraries would key
// differently from herald: they key HMAC with the secret's text, and herald with the text it
// shows back, which is the canonical (padded) base64 of the key.
void check_key_text(const SigningChange& change, SignatureScheme scheme, const char* field) {
  if (!change.key) return;
  if (auto problem = secret_text_problem(scheme, *change.key, change.key_text)) {
    throw invalid_field(field,
                        "signatureScheme " + *problem + ", as the secret route shows it back");
  }
}

// Throws 422, naming `field`, if one of the endpoint's own headers has the name its signature
// is sent under.
void check_signature_header_free(const Endpoint& ep, const char* field) {
  const auto taken = Signer::header_names(ep.signature_scheme, ep.signature_header);
  for (const auto& [name, value] : ep.headers) {
    const std::string lower = ascii_lower(name);
    if (std::find(taken.begin(), taken.end(), lower) != taken.end()) {
      throw invalid_field(
          field, "'" + name + "' carries this endpoint's signature (signatureScheme " +
                     scheme_name(ep.signature_scheme) + "); it cannot also be one of its headers");
    }
  }
}

// Applies an EndpointIn/EndpointUpdate/EndpointPatch body to `ep`. Returns what it asks of
// signing; the scheme and key are the caller's to apply (apply_signing). signatureScheme and
// signatureHeader are herald's: a PUT that leaves them out keeps them, as Svix's SDKs do not
// know them. `https_only`: a URL that is not https:// is an error.
SigningChange read_endpoint_body(const JsonIn& body, Endpoint& ep, bool patch, bool https_only,
                                 TimeMs now, ClientCertChange& tls) {
  BodyReader r(body);
  tls = read_client_cert(r, now);
  if (tls.given) ep.client_cert = tls.cert;
  if (!patch || r.present("url")) {
    ep.url = r.req_string("url", 4096);
    if (!ep.url.empty()) {
      if (auto problem = url_problem(ep.url)) {
        r.error("url", *problem);
      } else if (https_only && !is_https_url(ep.url)) {
        r.error("url", "the URL must start with https:// (this server is https-only)");
      }
    }
  }
  if (!patch || r.present("description")) {
    ep.description = r.opt_string("description", 1024).value_or("");
  }
  if (!patch || r.present("uid")) {
    ep.uid = r.opt_string("uid");
    if (ep.uid && !valid_uid(*ep.uid)) {
      r.error("uid", "must be 1 to 256 of A-Z a-z 0-9 _ . - and not look like an id");
    }
  }
  const char* rate_field = r.present("throttleRate") ? "throttleRate" : "rateLimit";
  if (!patch || r.present(rate_field)) {
    auto rate = r.opt_int(rate_field, 1, 1000000);
    ep.throttle_rate = rate ? std::optional<int>(static_cast<int>(*rate)) : std::nullopt;
  }
  if (!patch || r.present("disabled")) {
    bool disabled = r.opt_bool("disabled").value_or(false);
    if (disabled != ep.disabled || !disabled) ep.disabled_reason.reset();
    if (disabled && !ep.disabled) ep.disabled_reason = "disabled through the API";
    ep.disabled = disabled;
  }
  const char* types_field = r.present("eventTypes") ? "eventTypes" : "filterTypes";
  // An empty filter means no filter.
  if (!patch || r.present(types_field))
    ep.event_types = r.opt_name_list(types_field, kMaxEventTypes);
  if (!patch || r.present("channels")) ep.channels = r.opt_name_list("channels", kMaxChannels);
  if (!patch || r.present("metadata")) {
    ep.metadata = r.opt_string_map("metadata", kMaxMetadataEntries, kMaxMetadataLen)
                      .value_or(std::map<std::string, std::string>{});
  }
  if (r.present("headers")) {
    ep.headers = read_headers(r, "headers").value_or(std::map<std::string, std::string>{});
  }
  SigningChange change;
  if (r.present("headers")) change.header_field = "headers";
  if (r.present("signatureHeader")) change.header_field = "signatureHeader";
  change.scheme = read_scheme(r);
  change.key = read_secret(r, "secret", change.scheme, change.key_text);
  if (r.present("signatureHeader")) {
    ep.signature_header = r.opt_string("signatureHeader", 256);
    if (ep.signature_header) {
      if (auto problem = header_name_problem(*ep.signature_header)) {
        r.error("signatureHeader", *problem);
      }
    }
  }
  r.finish();
  return change;
}

// Makes `ep` sign as `change` asks: sets its scheme, and when that needs a key of another
// kind than the current one (and none is given) makes one, which takes over like a rotation
// with the default grace period (a standard endpoint moving to ed25519 sends v1 and v1a
// signatures side by side meanwhile). A given key takes over at once, as Svix's update does.
// Returns the key to rotate in, if any. Throws 422 when a header of the endpoint's would
// carry the signature.
std::optional<std::pair<SigningKey, int64_t>> apply_signing(
    Endpoint& ep, const SigningChange& change, const std::optional<SigningKey>& current) {
  ep.signature_scheme = scheme_after(change, ep.signature_scheme);
  check_key_text(change, ep.signature_scheme, "secret");
  check_signature_header_free(ep, change.header_field);
  const KeyKind kind = key_kind_for(ep.signature_scheme);
  if (change.key) {
    if (current == change.key) return std::nullopt;
    return std::pair{*change.key, int64_t{0}};
  }
  if (current && current->kind == kind) return std::nullopt;
  return std::pair{generate_key(kind), kDefaultGraceSeconds * 1000};
}

Endpoint load_endpoint(Session& c, const Application& app, const std::string& key) {
  auto ep = c.endpoints().get(app.id, key);
  if (!ep) throw not_found("endpoint");
  return *ep;
}

json headers_json(const Endpoint& ep) {
  json headers = json::object();
  json sensitive = json::array();
  for (const auto& [name, value] : ep.headers) {
    if (is_sensitive_header(name)) {
      sensitive.push_back(name);
    } else {
      headers[name] = value;
    }
  }
  return json{{"headers", headers}, {"sensitive", sensitive}};
}

// herald's extension of an endpoint for the portal: its attempts of the last 24 hours, their
// success rate (null without attempts), its latest attempt and since when it has been failing.
json health_json(Session& c, const Endpoint& ep, TimeMs now) {
  AttemptStore& attempts = c.attempts();
  int64_t success = 0;
  int64_t fail = 0;
  for (const auto& b :
       attempts.timeline(ep.id, now - kHealthWindowMs, now + 1, kHealthWindowMs + 1)) {
    success += b.success;
    fail += b.fail;
  }
  json latest = nullptr;
  if (auto a = attempts.latest(ep.id)) {
    latest = json{{"id", a->id},
                  {"msgId", a->msg_id},
                  {"timestamp", format_rfc3339(a->timestamp)},
                  {"status", static_cast<int>(a->status)},
                  {"statusText", status_text(a->status)},
                  {"responseStatusCode", a->response_status_code}};
  }
  return json{
      {"windowHours", kHealthWindowMs / 3600000},
      {"success", success},
      {"fail", fail},
      {"successRate", success + fail > 0
                          ? json(static_cast<double>(success) / static_cast<double>(success + fail))
                          : json(nullptr)},
      {"lastAttempt", latest},
      {"failingSince", ep.failing_since ? json(format_rfc3339(*ep.failing_since)) : json(nullptr)}};
}

int64_t bucket_ms(const std::string& name) {
  if (name == "minute") return 60 * 1000;
  if (name == "hour") return 3600 * 1000;
  if (name == "day") return 24 * 3600 * 1000;
  throw invalid_query("bucket", "must be minute, hour or day");
}

// The [since, until) of a recover or replay body: since required, until (absent: up to now)
// after it. Either is nullopt only when the body was reported wrong.
struct TimeWindow {
  std::optional<TimeMs> since;
  std::optional<TimeMs> until;
};
TimeWindow read_window(BodyReader& body) {
  TimeWindow w{body.req_time("since"), body.opt_time("until")};
  if (w.since && w.until && *w.since >= *w.until) body.error("since", "must be before until");
  return w;
}

// Where a family of endpoint routes finds the application its endpoints belong to.
struct EndpointScope {
  std::string base;    // the path (a pattern) of the collection
  int endpoint_param;  // the capture holding {endpoint}
  // The application, nullopt when it does not exist yet; `make` (in a transaction): made if
  // not. Throws 404 when the caller may not use it.
  std::function<std::optional<Application>(Session&, const ApiRequest&, bool make)> app;

  // The application, or 404.
  Application need(Session& session, const ApiRequest& r, bool make) const {
    auto found = app(session, r, make);
    if (!found) throw not_found("endpoint");
    return *found;
  }
};

// An application's endpoints, or the operational-webhook ones: create, read, list, change,
// delete, secrets and headers, the same routes under `scope.base`.
void register_endpoint_crud(ApiServer& s, const EndpointScope& scope) {
  const std::string& base = scope.base;
  const std::string one = base + "/([^/]+)";
  const int ep_param = scope.endpoint_param;

  s.route("GET", base + "/?", [&s, scope](ApiRequest& r) {
    auto p = r.list_params(kEndpointPrefix);
    // Svix lists endpoints newest first unless asked otherwise (applications oldest first).
    p.descending = r.query_descending().value_or(true);
    const bool with_health = r.query_bool("with_health", false);
    auto session = s.db().session();
    const auto app = scope.app(*session, r, false);
    if (!app) return ApiReply{200, list_json(json::array(), "", "", true, p)};
    auto page = session->endpoints().list(app->id, p);
    const TimeMs now = s.clock().now_ms();
    json data = json::array();
    for (const auto& e : page.items) {
      json j = to_json(e);
      if (with_health) j["health"] = health_json(*session, e, now);
      data.push_back(std::move(j));
    }
    std::string first = page.items.empty() ? "" : page.items.front().id;
    std::string last = page.items.empty() ? "" : page.items.back().id;
    return ApiReply{200, list_json(std::move(data), first, last, page.done, p)};
  });

  // Creates the endpoint the request's body describes, under `uid` when given (an upsert's
  // path) instead of the body's. REQUIRES: a transaction on `session`.
  auto create = [&s](Session& session, const Application& app, ApiRequest& r,
                     const std::optional<std::string>& uid) {
    Endpoint ep;
    TimeMs now = s.clock().now_ms();
    ClientCertChange tls;
    const SigningChange change =
        read_endpoint_body(r.body, ep, false, s.options().https_only, now, tls);
    if (uid) ep.uid = uid;
    auto key = apply_signing(ep, change, std::nullopt);
    ep.id = new_id(kEndpointPrefix, now);
    ep.app_id = app.id;
    ep.created_at = ep.updated_at = now;
    EndpointStore& endpoints = session.endpoints();
    if (ep.uid && endpoints.get(app.id, *ep.uid)) {
      throw conflict("an endpoint with uid '" + *ep.uid + "' exists");
    }
    endpoints.insert(ep, key->first);
    if (tls.key) endpoints.set_client_key(ep.id, tls.key, now);
    return ApiReply{201, to_json(ep)};
  };

  s.route("POST", base + "/?", [&s, scope, create](ApiRequest& r) {
    auto session = s.db().begin();
    Application app = *scope.app(*session, r, true);
    ApiReply reply = create(*session, app, r, std::nullopt);
    session->commit();
    return reply;
  });

  s.route("GET", one + "/?", [&s, scope, ep_param](ApiRequest& r) {
    auto session = s.db().session();
    Application app = scope.need(*session, r, false);
    return ApiReply{200, to_json(load_endpoint(*session, app, r.param(ep_param)))};
  });

  auto update = [&s, scope, ep_param, create](ApiRequest& r, bool patch) {
    auto session = s.db().begin();
    Application app = scope.need(*session, r, !patch);
    auto found = session->endpoints().get(app.id, r.param(ep_param));
    if (!found) {
      // Upsert, as Svix: a PUT on an unknown uid creates the endpoint under that uid.
      if (patch || !valid_uid(r.param(ep_param))) throw not_found("endpoint");
      ApiReply reply = create(*session, app, r, r.param(ep_param));
      session->commit();
      return reply;
    }
    Endpoint ep = *found;
    auto old_uid = ep.uid;
    TimeMs now = s.clock().now_ms();
    ClientCertChange tls;
    const SigningChange change =
        read_endpoint_body(r.body, ep, patch, s.options().https_only, now, tls);
    // A PUT addressed by uid keeps that uid unless its body names another: an upsert repeated
    // with the same body must find the endpoint again.
    if (!ep.uid && old_uid == r.param(ep_param)) ep.uid = old_uid;
    EndpointStore& endpoints = session->endpoints();
    auto key = apply_signing(ep, change, endpoints.current_key(ep.id));
    if (ep.uid && ep.uid != old_uid) {
      if (auto other = endpoints.get(app.id, *ep.uid); other && other->id != ep.id) {
        throw conflict("an endpoint with uid '" + *ep.uid + "' exists");
      }
    }
    ep.updated_at = now;
    endpoints.update(ep);
    if (key) endpoints.rotate_key(ep.id, key->first, key->second, now);
    if (tls.given) endpoints.set_client_key(ep.id, tls.key, now);
    session->commit();
    return ApiReply{200, to_json(ep)};
  };
  s.route("PUT", one + "/?", [update](ApiRequest& r) { return update(r, false); });
  s.route("PATCH", one + "/?", [update](ApiRequest& r) { return update(r, true); });

  s.route("DELETE", one + "/?", [&s, scope, ep_param](ApiRequest& r) {
    auto session = s.db().session();
    Application app = scope.need(*session, r, false);
    Endpoint ep = load_endpoint(*session, app, r.param(ep_param));
    session->endpoints().remove(app.id, ep.id);
    return ApiReply{204, {}};
  });

  s.route("GET", one + "/secret/?", [&s, scope, ep_param](ApiRequest& r) {
    auto session = s.db().session();
    Application app = scope.need(*session, r, false);
    Endpoint ep = load_endpoint(*session, app, r.param(ep_param));
    auto key = session->endpoints().current_key(ep.id);
    if (!key) throw ApiError(500, "internal", "endpoint has no signing key");
    // A read-only token (a portal link for looking) does not get what signs: whoever holds an
    // HMAC secret can forge deliveries. A public key is no secret.
    if (r.caller.read_only && key->kind != KeyKind::kEd25519) {
      throw ApiError(403, "forbidden", "a read-only token cannot read signing secrets");
    }
    // An Ed25519 endpoint's is its public key: the private one never leaves herald.
    return ApiReply{200, json{{"key", shown_secret(*key)}}};
  });

  s.route("POST", one + "/secret/rotate/?", [&s, scope, ep_param](ApiRequest& r) {
    BodyReader body(r.body);
    SigningChange change;
    change.key = read_secret(body, "key", std::nullopt, change.key_text);
    auto grace = body.opt_int("gracePeriodSeconds", 0, kMaxGraceSeconds);
    body.finish();
    auto session = s.db().begin();
    Application app = scope.need(*session, r, false);
    Endpoint ep = load_endpoint(*session, app, r.param(ep_param));
    TimeMs now = s.clock().now_ms();
    EndpointStore& endpoints = session->endpoints();
    // A key of the other kind switches the scheme (whsk_: ed25519; whsec_ on an ed25519
    // endpoint: standard); the old key keeps signing for the grace period where it can.
    const SignatureScheme scheme = scheme_after(change, ep.signature_scheme);
    check_key_text(change, scheme, "key");
    if (scheme != ep.signature_scheme) {
      ep.signature_scheme = scheme;
      check_signature_header_free(ep, "key");
      ep.updated_at = now;
      endpoints.update(ep);
    }
    endpoints.rotate_key(ep.id, change.key ? *change.key : generate_key(key_kind_for(scheme)),
                         grace.value_or(kDefaultGraceSeconds) * 1000, now);
    session->commit();
    return ApiReply{204, {}};
  });

  s.route("GET", one + "/headers/?", [&s, scope, ep_param](ApiRequest& r) {
    auto session = s.db().session();
    Application app = scope.need(*session, r, false);
    return ApiReply{200, headers_json(load_endpoint(*session, app, r.param(ep_param)))};
  });

  auto set_headers = [&s, scope, ep_param](ApiRequest& r, bool patch) {
    JsonIn given_body = r.body;
    if (patch && given_body.is_object() && given_body["headers"].is_object()) {
      for (auto it = given_body["headers"].begin(); it != given_body["headers"].end();) {
        it = it->is_null() ? given_body["headers"].erase(it) : std::next(it);
      }
    }
    BodyReader body(given_body);
    if (!r.body.contains("headers")) body.error("headers", "field required", "value_error.missing");
    auto given = read_headers(body, "headers");
    // Svix's EndpointHeadersPatchIn: names to remove, besides those whose value is null.
    const auto deleted =
        patch ? body.opt_string_list("deleteHeaders", kMaxHeaders, 4096) : std::nullopt;
    body.finish();
    auto session = s.db().begin();
    Application app = scope.need(*session, r, false);
    Endpoint ep = load_endpoint(*session, app, r.param(ep_param));
    if (!patch) ep.headers.clear();
    // PATCH: a null value removes the header.
    if (patch) {
      for (const auto& [name, value] : r.body["headers"].items()) {
        if (value.is_null()) ep.headers.erase(name);
      }
      for (const auto& name : deleted.value_or(std::vector<std::string>{})) {
        std::erase_if(ep.headers, [&](const auto& h) { return equals_ascii_ci(h.first, name); });
      }
    }
    for (const auto& [name, value] : given.value_or(std::map<std::string, std::string>{})) {
      ep.headers[name] = value;
    }
    if (ep.headers.size() > kMaxHeaders) throw invalid_field("headers", "too many headers");
    check_signature_header_free(ep, "headers");
    ep.updated_at = s.clock().now_ms();
    session->endpoints().update(ep);
    session->commit();
    return ApiReply{204, {}};
  };
  s.route("PUT", one + "/headers/?",
          [set_headers](ApiRequest& r) { return set_headers(r, false); });
  s.route("PATCH", one + "/headers/?",
          [set_headers](ApiRequest& r) { return set_headers(r, true); });
}

}  // namespace

void register_endpoint_routes(ApiServer& s) {
  const std::string base = "/api/v1/app/([^/]+)/endpoint";
  const std::string one = base + "/([^/]+)";
  register_endpoint_crud(
      s, EndpointScope{base, 2, [](Session& session, const ApiRequest& r, bool) {
                         return std::optional(load_app(session, r.caller, r.param(1)));
                       }});

  // The endpoint an endpoint task (recover, replays) works on: enabled, else 409.
  auto task_endpoint = [&s](ApiRequest& r) {
    auto session = s.db().session();
    Application app = load_app(*session, r.caller, r.param(1));
    Endpoint ep = load_endpoint(*session, app, r.param(2));
    if (ep.disabled) throw conflict("the endpoint is disabled: enable it first");
    return ep;
  };

  // A task over the endpoint's messages of [since, until) (the body's; until: now), made by
  // `make(endpoint, since, until, now)`.
  auto window_task = [&s, task_endpoint](auto make) {
    return [&s, task_endpoint, make](ApiRequest& r) {
      if (auto refusal = s.intake_refusal()) return *refusal;
      BodyReader body(r.body);
      const TimeWindow window = read_window(body);
      body.finish();
      const Endpoint ep = task_endpoint(r);
      const TimeMs now = s.clock().now_ms();
      return s.start_task(make(ep, *window.since, window.until.value_or(now + 1), now));
    };
  };
  // Svix's recover: a task that re-delivers every message whose delivery to the endpoint
  // failed in [since, until); each is tried once more, now, as a manual attempt.
  s.route("POST", one + "/recover/?",
          window_task([](const Endpoint& ep, TimeMs since, TimeMs until, TimeMs now) {
            return recover_task(ep, since, until, now);
          }));
  // Svix's replay-missing: a task that sends the endpoint the messages created in [since,
  // until) that its filters accept and that it never had a delivery of.
  s.route("POST", one + "/replay-missing/?",
          window_task([](const Endpoint& ep, TimeMs since, TimeMs until, TimeMs now) {
            return replay_missing_task(ep, since, until, now);
          }));

  // Svix's bulk-replay: a task that sends the endpoint again the messages created in [since,
  // until) it had deliveries of, successful or not, that match the filters.
  s.route("POST", one + "/bulk-replay/?", [&s, task_endpoint](ApiRequest& r) {
    if (auto refusal = s.intake_refusal()) return *refusal;
    BodyReader body(r.body);
    BulkReplayFilter f;
    const TimeWindow window = read_window(body);
    f.event_types = body.opt_name_list("eventTypes", kMaxEventTypes);
    f.channel = body.opt_string("channel", 128);
    f.tag = body.opt_string("tag", 128);
    if (auto status = body.opt_int("status", 0, 4)) {
      f.status = static_cast<DeliveryStatus>(*status);  // 4 (canceled) matches nothing
    }
    if (auto cls = body.opt_int("statusCodeClass", 0, 500)) {
      if (*cls % 100 != 0) body.error("statusCodeClass", "must be 0, 100, 200, 300, 400 or 500");
      f.status_code_class = static_cast<int>(*cls);
    }
    body.finish();
    const Endpoint ep = task_endpoint(r);
    const TimeMs now = s.clock().now_ms();
    f.since = *window.since;
    f.until = window.until.value_or(now + 1);
    return s.start_task(bulk_replay_task(ep, f, now));
  });

  // herald's: the endpoint's attempts per bucket of time in [since, until), oldest first,
  // every bucket listed. Buckets start on UTC multiples of their size.
  s.route("GET", one + "/stats/timeline/?", [&s](ApiRequest& r) {
    const int64_t size = bucket_ms(r.query("bucket").value_or("hour"));
    const TimeMs now = s.clock().now_ms();
    const TimeMs until = r.query_time("until").value_or(now);
    const TimeMs since = r.query_time("since").value_or(until - 24 * 3600 * 1000);
    if (since >= until) throw invalid_query("since", "must be before until");
    const TimeMs start = since - (since % size + size) % size;
    const int64_t count = (until - start + size - 1) / size;
    if (count > kMaxTimelineBuckets) {
      throw invalid_query("bucket", "the range holds " + std::to_string(count) +
                                        " buckets; at most " + std::to_string(kMaxTimelineBuckets) +
                                        " are served");
    }
    auto session = s.db().session();
    Application app = load_app(*session, r.caller, r.param(1));
    Endpoint ep = load_endpoint(*session, app, r.param(2));
    std::vector<AttemptBucket> dense(static_cast<size_t>(count));
    for (const auto& b : session->attempts().timeline(ep.id, start, until, size)) {
      if (b.index >= 0 && b.index < count) dense[static_cast<size_t>(b.index)] = b;
    }
    json data = json::array();
    for (int64_t i = 0; i < count; ++i) {
      const auto& b = dense[static_cast<size_t>(i)];
      data.push_back(json{
          {"start", format_rfc3339(start + i * size)}, {"success", b.success}, {"fail", b.fail}});
    }
    return ApiReply{200, json{{"bucket", r.query("bucket").value_or("hour")},
                              {"since", format_rfc3339(start)},
                              {"until", format_rfc3339(until)},
                              {"data", std::move(data)}}};
  });

  s.route("GET", one + "/stats/?", [&s](ApiRequest& r) {
    auto session = s.db().session();
    Application app = load_app(*session, r.caller, r.param(1));
    Endpoint ep = load_endpoint(*session, app, r.param(2));
    const auto since = r.query_time("since");
    const auto until = r.query_time("until");
    return ApiReply{200, to_json(session->deliveries().stats_between(ep.id, since, until))};
  });
}

// Operational webhooks' endpoints (Svix's /operational-webhook/endpoint): those of the
// reserved application, made with the first of them; the operator's alone.
void register_operational_webhook_routes(ApiServer& s) {
  register_endpoint_crud(s, EndpointScope{"/api/v1/operational-webhook/endpoint", 1,
                                          [&s](Session& session, const ApiRequest& r, bool make) {
                                            require_admin(r.caller);
                                            return make ? std::optional(ensure_operator_app(
                                                              session, s.clock().now_ms()))
                                                        : find_operator_app(session);
                                          }});
}

}  // namespace herald
