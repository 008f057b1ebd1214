#include "core/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <map>

#include "core/address_policy.h"
#include "core/ascii.h"
#include "core/certificates.h"
#include "core/encoding.h"
#include "core/signing.h"
#include "core/time_format.h"

namespace herald {
namespace {

constexpr size_t kMinAdminTokenLen = 16;
constexpr size_t kMasterKeyBytes = 32;
constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error", "off"};

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string quote(std::string_view s) {
  return "'" + std::string(s) + "'";
}

// Shortest exact spelling of a duration: "15s", "250ms", "2h".
std::string format_duration(int64_t ms) {
  static constexpr std::pair<int64_t, const char*> kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}};
  if (ms == 0) return "0s";
  for (const auto& [scale, unit] : kUnits) {
    if (ms % scale == 0) return std::to_string(ms / scale) + unit;
  }
  return std::to_string(ms) + "ms";
}

// A decimal integer in [1, max] with nothing else around it.
template <typename T>
std::optional<T> parse_positive(std::string_view s, T max) {
  if (s.empty() || s.front() < '0' || s.front() > '9') return std::nullopt;
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  if (v == 0 || v > static_cast<uint64_t>(max)) return std::nullopt;
  return static_cast<T>(v);
}

// "host:port" or "[v6host]:port", port 0..65535 (0: any free port).
bool parse_listen(std::string_view s, std::string* host, int* port) {
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view h = s.substr(0, colon);
  const std::string_view p = s.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
    in6_addr addr{};
    if (inet_pton(AF_INET6, std::string(h).c_str(), &addr) != 1) return false;
  } else if (h.find(':') != std::string_view::npos) {
    return false;  // an IPv6 address needs brackets
  }
  if (h.empty() || h.find_first_of(" \t[]") != std::string_view::npos) return false;
  if (p.empty() || p.size() > 5 ||
      !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  const int v = std::stoi(std::string(p));
  if (v > 65535) return false;
  *host = std::string(h);
  *port = v;
  return true;
}

// "a.b.c.d/n" (n <= 32) or "v6addr/n" (n <= 128), as the SSRF guard reads it.
bool is_cidr(std::string_view s) {
  return AddressPolicy::parse({std::string(s)}, nullptr).has_value();
}

// Applies one value to `config`. On bad input returns false with the reason in *why, which
// follows the quoted value in the error ("'5x' <why>"), or replaces it when `why` starts
// with '!' (for values that must not be echoed).
using Apply = bool (*)(std::string_view value, Config& config, std::string* why);

struct Setting {
  std::string_view flag;  // without the leading "--"
  std::string_view env;
  std::string_view metavar;
  std::string (*default_text)();
  std::string_view help;
  Apply apply;
};

bool apply_duration(std::string_view v, int64_t* out, std::string* why) {
  const auto ms = parse_duration_ms(v);
  if (!ms) {
    *why = "is not a duration (use e.g. 250ms, 5s, 2m)";
    return false;
  }
  if (*ms == 0) {
    *why = "must be longer than zero";
    return false;
  }
  *out = *ms;
  return true;
}

template <typename T>
bool apply_positive(std::string_view v, T* out, std::string* why) {
  const auto n = parse_positive<T>(v, std::numeric_limits<T>::max());
  if (!n) {
    *why = "is not a positive integer";
    return false;
  }
  *out = *n;
  return true;
}

// A byte count, where 0 means "none".
bool apply_bytes_or_zero(std::string_view v, uint64_t* out, std::string* why) {
  if (v == "0") {
    *out = 0;
    return true;
  }
  return apply_positive(v, out, why);
}

std::string retry_text(const RetryPolicy& p) {
  std::string out;
  for (int64_t d : p.delays_ms()) {
    if (!out.empty()) out += ',';
    out += format_duration(d);
  }
  return out;
}

const Setting kSettings[] = {
    {"listen", "HERALD_LISTEN", "HOST:PORT",
     [] {
       const Config c;
       return c.listen_host + ":" + std::to_string(c.listen_port);
     },
     "Address of the HTTP API (port 0 picks a free port; IPv6 as [::1]:8071).",
     [](std::string_view v, Config& c, std::string* why) {
       if (parse_listen(v, &c.listen_host, &c.listen_port)) return true;
       *why = "is not host:port with a port of 0-65535 (use e.g. 127.0.0.1:8071)";
       return false;
     }},
    {"db", "HERALD_DB", "PATH|URI", [] { return Config().db_path; },
     "SQLite database file (created if missing), or a postgresql:// URI (libpq\n"
     "      syntax): any number of herald processes may share one PostgreSQL database.",
     [](std::string_view v, Config& c, std::string* why) {
       if (v.empty()) {
         *why = "is not a file path or a postgresql:// URI";
         return false;
       }
       c.db_path = std::string(v);
       return true;
     }},
    {"db-pool", "HERALD_DB_POOL", "N", [] { return std::string("32 (SQLite), 10 (PostgreSQL)"); },
     "Database connections the API may hold at once (the scheduler, the write\n"
     "      batcher and PostgreSQL's notifications take one more each).",
     [](std::string_view v, Config& c, std::string* why) {
       int n = 0;
       if (!apply_positive(v, &n, why)) return false;
       if (n > 1000) {
         *why = "is more than 1000 connections";
         return false;
       }
       c.db_pool = n;
       return true;
     }},
    {"admin-token", "HERALD_ADMIN_TOKEN", "TOKEN", [] { return std::string("none"); },
     "Bearer token with full access to the API (at least 16 characters).",
     [](std::string_view v, Config& c, std::string* why) {
       if (v.size() < kMinAdminTokenLen) {
         *why = "!must be at least " + std::to_string(kMinAdminTokenLen) + " characters (got " +
                std::to_string(v.size()) + ")";
         return false;
       }
       c.admin_token = std::string(v);
       return true;
     }},
    {"master-key", "HERALD_MASTER_KEY", "BASE64", [] { return std::string("none"); },
     "Key that seals endpoint secrets in the database: base64 of 32 bytes\n"
     "      (e.g. openssl rand -base64 32). Prefer the variable to the flag.",
     [](std::string_view v, Config& c, std::string* why) {
       auto key = base64_decode(trim(v));
       if (!key || key->size() != kMasterKeyBytes) {
         *why = "!must be base64 of exactly 32 bytes (e.g. from openssl rand -base64 32)";
         return false;
       }
       c.master_key = std::move(*key);
       return true;
     }},
    {"master-key-file", "HERALD_MASTER_KEY_FILE", "PATH", [] { return std::string("<db>.key"); },
     "Holds the master key when HERALD_MASTER_KEY is unset; created with mode\n"
     "      0600 on first start. herald refuses one that others may read.",
     [](std::string_view v, Config& c, std::string* why) {
       if (v.empty()) {
         *why = "is not a file path";
         return false;
       }
       c.master_key_file = std::string(v);
       return true;
     }},
    {"retry-schedule", "HERALD_RETRY_SCHEDULE", "LIST", [] { return retry_text(Config().retry); },
     "Waits between delivery attempts, comma-separated; randomized by +/-20%.",
     [](std::string_view v, Config& c, std::string* why) {
       std::string reason;
       auto policy = RetryPolicy::parse(v, c.retry.jitter(), &reason);
       if (!policy) {
         *why = "!" + reason;
         return false;
       }
       c.retry = std::move(*policy);
       return true;
     }},
    {"request-timeout", "HERALD_REQUEST_TIMEOUT", "DURATION",
     [] { return format_duration(Config().request_timeout_ms); },
     "Time limit for one delivery attempt, connecting included.",
     [](std::string_view v, Config& c, std::string* why) {
       return apply_duration(v, &c.request_timeout_ms, why);
     }},
    {"connect-timeout", "HERALD_CONNECT_TIMEOUT", "DURATION",
     [] { return format_duration(Config().connect_timeout_ms); },
     "Time limit for connecting to an endpoint.",
     [](std::string_view v, Config& c, std::string* why) {
       return apply_duration(v, &c.connect_timeout_ms, why);
     }},
    {"allow-private-cidrs", "HERALD_ALLOW_PRIVATE_CIDRS", "LIST",
     [] { return std::string("none"); },
     "CIDR blocks the SSRF guard lets deliveries connect to, comma-separated,\n"
     "      e.g. 127.0.0.0/8,::1/128. Without them loopback, private, link-local,\n"
     "      CGNAT, unique-local, multicast and unspecified addresses are refused.",
     [](std::string_view v, Config& c, std::string* why) {
       std::vector<std::string> cidrs;
       if (!trim(v).empty()) {
         while (true) {
           const size_t comma = v.find(',');
           const std::string_view item = trim(v.substr(0, comma));
           if (!is_cidr(item)) {
             *why = "!" + quote(item) + " is not a CIDR block (use e.g. 10.0.0.0/8 or fd00::/8)";
             return false;
           }
           cidrs.emplace_back(item);
           if (comma == std::string_view::npos) break;
           v.remove_prefix(comma + 1);
         }
       }
       c.allow_private_cidrs = std::move(cidrs);
       return true;
     }},
    {"ca-file", "HERALD_CA_FILE", "PATH", [] { return std::string("the system's CAs"); },
     "PEM bundle of the certificate authorities trusted for https endpoints, in place of\n"
     "      the system's (for a private PKI; add the system's bundle to it to trust both).",
     [](std::string_view v, Config& c, std::string* why) {
       if (auto problem = ca_bundle_problem(std::string(v))) {
         *why = *problem;
         return false;
       }
       c.ca_file = std::string(v);
       return true;
     }},
    {"https-only", "HERALD_HTTPS_ONLY", "BOOL", [] { return std::string("false"); },
     "Reject endpoint URLs that are not https:// (true or false; the bare flag is true).",
     [](std::string_view v, Config& c, std::string* why) {
       const std::string lower = ascii_lower(v);
       if (lower == "true" || lower == "1") {
         c.https_only = true;
       } else if (lower == "false" || lower == "0") {
         c.https_only = false;
       } else {
         *why = "is not true, false, 1 or 0";
         return false;
       }
       return true;
     }},
    {"max-payload-bytes", "HERALD_MAX_PAYLOAD_BYTES", "N",
     [] { return std::to_string(Config().max_payload_bytes); },
     "Largest request body accepted (so the largest message), in bytes.",
     [](std::string_view v, Config& c, std::string* why) {
       return apply_positive(v, &c.max_payload_bytes, why);
     }},
    {"max-connections", "HERALD_MAX_CONNECTIONS", "N",
     [] { return std::to_string(Config().max_connections); },
     "Most API connections open at once; beyond, a new one is answered 503.",
     [](std::string_view v, Config& c, std::string* why) {
       return apply_positive(v, &c.max_connections, why);
     }},
    {"max-connections-per-client", "HERALD_MAX_CONNECTIONS_PER_CLIENT", "N",
     [] { return std::to_string(Config().max_connections_per_client); },
     "Most API connections open at once from one client address (behind a proxy, all of\n"
     "      them come from the proxy's: raise it to --max-connections there).",
     [](std::string_view v, Config& c, std::string* why) {
       return apply_positive(v, &c.max_connections_per_client, why);
     }},
    {"disk-reserve-bytes", "HERALD_DISK_RESERVE_BYTES", "N",
     [] { return std::to_string(Config().disk_reserve_bytes); },
     "SQLite: space kept back beside the database (the file <db>.reserve) so that on a\n"
     "      full disk accepted messages are still delivered while new ones get 503; 0: none.",
     [](std::string_view v, Config& c, std::string* why) {
       return apply_bytes_or_zero(v, &c.disk_reserve_bytes, why);
     }},
    {"sqlite-memory-bytes", "HERALD_SQLITE_MEMORY_BYTES", "N",
     [] { return std::to_string(Config().sqlite_memory_bytes); },
     "SQLite: memory its page caches may hold in all, over every connection (past it\n"
     "      SQLite reuses cached pages instead of taking more); 0: each connection's own cap.",
     [](std::string_view v, Config& c, std::string* why) {
       return apply_bytes_or_zero(v, &c.sqlite_memory_bytes, why);
     }},
    {"max-in-flight", "HERALD_MAX_IN_FLIGHT", "N",
     [] { return std::to_string(Config().max_in_flight); },
     "Most delivery attempts in progress at once.",
     [](std::string_view v, Config& c, std::string* why) {
       return apply_positive(v, &c.max_in_flight, why);
     }},
    {"endpoint-concurrency", "HERALD_ENDPOINT_CONCURRENCY", "N",
     [] { return std::to_string(Config().endpoint_concurrency); },
     "Most delivery attempts in progress at once to one endpoint.",
     [](std::string_view v, Config& c, std::string* why) {
       return apply_positive(v, &c.endpoint_concurrency, why);
     }},
    {"lease", "HERALD_LEASE", "DURATION", [] { return format_duration(Config().lease_ms); },
     "How long a claimed delivery stays claimed; must exceed the request timeout.",
     [](std::string_view v, Config& c, std::string* why) {
       return apply_duration(v, &c.lease_ms, why);
     }},
    {"public-url", "HERALD_PUBLIC_URL", "URL", [] { return std::string("none"); },
     "Base URL of this server as users reach it, for portal links.",
     [](std::string_view v, Config& c, std::string* why) {
       if (!v.empty() && !v.starts_with("http://") && !v.starts_with("https://")) {
         *why = "is not an http:// or https:// URL";
         return false;
       }
       while (v.ends_with('/')) v.remove_suffix(1);
       if (v == "http:" || v == "https:") {
         *why = "is not an http:// or https:// URL";
         return false;
       }
       c.public_url = std::string(v);
       return true;
     }},
    {"disable-after", "HERALD_DISABLE_AFTER", "DURATION",
     [] { return format_duration(Config().disable_after_ms); },
     "Disable an endpoint that has failed this long without a single success.",
     [](std::string_view v, Config& c, std::string* why) {
       return apply_duration(v, &c.disable_after_ms, why);
     }},
    {"retention", "HERALD_RETENTION", "DURATION",
     [] { return format_duration(Config().retention_ms); },
     "Purge message payloads, and attempts, older than this.",
     [](std::string_view v, Config& c, std::string* why) {
       return apply_duration(v, &c.retention_ms, why);
     }},
    {"message-retention", "HERALD_MESSAGE_RETENTION", "DURATION",
     [] { return std::string("twice --retention"); },
     "Delete messages older than this, with their deliveries, unless one is still pending;\n"
     "      at least --retention.",
     [](std::string_view v, Config& c, std::string* why) {
       return apply_duration(v, &c.message_retention_ms, why);
     }},
    {"shutdown-timeout", "HERALD_SHUTDOWN_TIMEOUT", "DURATION",
     [] { return format_duration(Config().shutdown_timeout_ms); },
     "On SIGTERM/SIGINT, how long deliveries in flight may take to finish.",
     [](std::string_view v, Config& c, std::string* why) {
       return apply_duration(v, &c.shutdown_timeout_ms, why);
     }},
    {"operator-url", "HERALD_OPERATOR_URL", "URL", [] { return std::string("none"); },
     "Where to send operational webhooks (endpoint.disabled, message.attempt.*).",
     [](std::string_view v, Config& c, std::string* why) {
       if (!v.empty() && !v.starts_with("http://") && !v.starts_with("https://")) {
         *why = "is not an http:// or https:// URL";
         return false;
       }
       c.operator_url = std::string(v);
       return true;
     }},
    {"operator-secret", "HERALD_OPERATOR_SECRET", "SECRET", [] { return std::string("none"); },
     "Signing secret of the operational webhooks (whsec_..., or a whsk_... Ed25519 key);\n"
     "      needed with --operator-url.",
     [](std::string_view v, Config& c, std::string* why) {
       if (!parse_secret(v, why)) return false;
       c.operator_secret = std::string(v);
       return true;
     }},
    {"operator-signature-scheme", "HERALD_OPERATOR_SIGNATURE_SCHEME", "SCHEME",
     [] { return std::string("from the secret"); },
     "How operational webhooks are signed: standard, stripe, github or ed25519\n"
     "      (docs/SIGNATURES.md); by default standard, or ed25519 for a whsk_ key.",
     [](std::string_view v, Config& c, std::string* why) {
       c.operator_scheme = parse_scheme(v);
       if (!c.operator_scheme) *why = "must be one of standard, stripe, github, ed25519";
       return c.operator_scheme.has_value();
     }},
    {"log-level", "HERALD_LOG_LEVEL", "LEVEL", [] { return Config().log_level; },
     "One of trace, debug, info, warn, error, off.",
     [](std::string_view v, Config& c, std::string* why) {
       const std::string lower = ascii_lower(v);
       if (std::find(std::begin(kLogLevels), std::end(kLogLevels), lower) == std::end(kLogLevels)) {
         *why = "is not a log level (use trace, debug, info, warn, error or off)";
         return false;
       }
       c.log_level = lower;
       return true;
     }},
};

const Setting* find_setting(std::string_view flag) {
  for (const auto& s : kSettings) {
    if (s.flag == flag) return &s;
  }
  return nullptr;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::optional<Config> parse_serve_config(const std::vector<std::string>& args, const EnvLookup& env,
                                         std::string* error) {
  const auto fail = [&](std::string message) -> std::optional<Config> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };

  // Flag values by setting; a repeated flag's last value wins.
  std::map<const Setting*, std::string> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (!arg.starts_with("--") || arg.size() == 2) {
      return fail("unexpected argument " + quote(arg) + " (see herald serve --help)");
    }
    const size_t eq = arg.find('=');
    const std::string_view name = arg.substr(2, eq == std::string_view::npos ? arg.npos : eq - 2);
    const Setting* setting = find_setting(name);
    if (setting == nullptr) {
      return fail("unknown flag --" + std::string(name) + " (see herald serve --help)");
    }
    if (eq != std::string_view::npos) {
      flags[setting] = std::string(arg.substr(eq + 1));
    } else if (i + 1 < args.size() && !args[i + 1].starts_with("--")) {
      flags[setting] = args[++i];
    } else if (setting->metavar == "BOOL") {
      flags[setting] = "true";  // a bare switch
    } else {
      return fail("flag --" + std::string(name) + " needs a value (see herald serve --help)");
    }
  }

  Config config;
  std::string lease_source, timeout_source, message_retention_source;
  for (const auto& setting : kSettings) {
    std::string source;
    std::optional<std::string> value;
    if (auto it = flags.find(&setting); it != flags.end()) {
      source = "--" + std::string(setting.flag);
      value = it->second;
    } else if (value = env(std::string(setting.env)); value) {
      source = std::string(setting.env);
    } else {
      continue;
    }
    std::string why;
    if (!setting.apply(*value, config, &why)) {
      if (why.starts_with('!')) return fail(source + ": " + why.substr(1));
      return fail(source + ": " + quote(*value) + " " + why);
    }
    if (setting.flag == "lease") lease_source = source;
    if (setting.flag == "message-retention") message_retention_source = source;
    if (setting.flag == "request-timeout") timeout_source = source;
  }

  if (config.lease_ms <= config.request_timeout_ms) {
    const std::string lease_name = lease_source.empty() ? "HERALD_LEASE" : lease_source;
    const std::string timeout_name =
        timeout_source.empty() ? "HERALD_REQUEST_TIMEOUT" : timeout_source;
    return fail(lease_name + ": the lease (" + format_duration(config.lease_ms) +
                ") must be longer than the request timeout (" +
                format_duration(config.request_timeout_ms) + ", " + timeout_name + ")");
  }
  if (message_retention_source.empty()) {
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    config.message_retention_ms = config.retention_ms > kMax / 2 ? kMax : 2 * config.retention_ms;
  } else if (config.message_retention_ms < config.retention_ms) {
    return fail(message_retention_source + ": messages (" +
                format_duration(config.message_retention_ms) +
                ") must be kept at least as long as their payloads (" +
                format_duration(config.retention_ms) + ", HERALD_RETENTION)");
  }
  if (is_postgres_uri(config.db_path)) {
    // Every node must seal with the same key: one made here would be this node's alone.
    if (!config.master_key && config.master_key_file.empty()) {
      return fail(
          "HERALD_MASTER_KEY: must be set when HERALD_DB is a PostgreSQL URI (every herald "
          "sharing the database needs the same key; or name a key file with "
          "HERALD_MASTER_KEY_FILE)");
    }
  } else if (config.master_key_file.empty()) {
    config.master_key_file = config.db_path + ".key";
  }
  if (!config.operator_url.empty() && !config.operator_secret) {
    return fail("HERALD_OPERATOR_URL: needs HERALD_OPERATOR_SECRET (whsec_...) to sign with");
  }
  if (config.operator_secret) {
    std::string why;
    const SigningKey key = *parse_secret(*config.operator_secret, &why);  // checked when read
    const KeyKind kind = key.kind;
    if (!config.operator_scheme) {
      config.operator_scheme =
          kind == KeyKind::kEd25519 ? SignatureScheme::kEd25519 : SignatureScheme::kStandard;
    } else if (key_kind_for(*config.operator_scheme) != kind) {
      return fail(std::string("HERALD_OPERATOR_SIGNATURE_SCHEME: ") +
                  scheme_name(*config.operator_scheme) + " signs with " +
                  (kind == KeyKind::kEd25519 ? "a whsec_ secret" : "a whsk_ Ed25519 key") +
                  ", and HERALD_OPERATOR_SECRET is not one");
    }
    if (auto problem = secret_text_problem(*config.operator_scheme, key, *config.operator_secret)) {
      return fail("HERALD_OPERATOR_SECRET: " + *problem);
    }
  }
  return config;
}

bool is_postgres_uri(std::string_view location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

std::string describe_location(std::string_view location) {
  std::string out(location);
  if (!is_postgres_uri(out)) return out;
  // postgresql://user:password@host/db -> postgresql://user@host/db
  const size_t scheme = out.find("://");
  const size_t at = out.find('@', scheme + 3);
  const size_t slash = out.find('/', scheme + 3);
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
    const size_t colon = out.find(':', scheme + 3);
    if (colon != std::string::npos && colon < at) out.erase(colon, at - colon);
  }
  // ...?password=secret&x=y -> ...?x=y
  for (size_t p = out.find("password="); p != std::string::npos; p = out.find("password=", p)) {
    const size_t end = out.find('&', p);
    out.erase(p, end == std::string::npos ? std::string::npos : end - p + 1);
  }
  while (!out.empty() && (out.back() == '&' || out.back() == '?')) out.pop_back();
  return out;
}

int default_db_pool(const Config& c) {
  if (c.db_pool) return *c.db_pool;
  return is_postgres_uri(c.db_path) ? 10 : 32;
}

std::string serve_help() {
  std::string out =
      "Usage: herald serve [flags]\n"
      "\n"
      "Runs the webhook delivery server: the HTTP API and the delivery workers.\n"
      "Every flag can also be set by the environment variable shown; a flag wins.\n"
      "Write a flag's value as \"--flag value\" or \"--flag=value\". Durations are a\n"
      "whole number and a unit: 250ms, 5s, 30m, 2h, 1d.\n"
      "\n"
      "Flags:\n";
  for (const auto& s : kSettings) {
    std::string head = "  --" + std::string(s.flag) + " " + std::string(s.metavar);
    if (head.size() < 32) head.resize(32, ' ');
    out += head + " " + std::string(s.env) + ", default " + s.default_text() + "\n";
    out += "      " + std::string(s.help) + "\n";
  }
  return out;
}

}  // namespace herald
