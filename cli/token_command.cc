#include "cli/token_command.h"

#include <sys/stat.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <optional>

#include "api/tokens.h"
#include "cli/exit_status.h"
#include "core/time_format.h"
#include "db/app_store.h"
#include "db/database.h"
#include "db/session.h"
#include "db/token_store.h"

namespace herald {
namespace {

constexpr const char* kUsage =
    "Usage: herald token <command> [flags]\n"
    "\n"
    "API tokens. Only a token's SHA-256 is stored: its text is shown once, when created.\n"
    "\n"
    "Commands:\n"
    "  create [--app APP] [--expires DURATION] [--name NAME]\n"
    "         prints a new token on stdout: an admin token, or with --app (an application\n"
    "         id or uid) one that reaches only that application (404 for anything else);\n"
    "         with --expires (e.g. 1h, 30d) it stops working after that long\n"
    "  list   prints each token's id, scope, name, creation and expiry (never the token)\n"
    "  revoke TOKEN_ID\n"
    "         deletes the token: it is refused from then on\n"
    "\n"
    "Every command takes --db PATH|URI (HERALD_DB, default ./herald.db): a SQLite file, or\n"
    "a postgresql:// URI (tokens made there work on every herald sharing the database).\n";

int usage_error(const std::string& message) {
  return fail(message + " (see herald token --help)", kExitCannotStart);
}

// Flags of one subcommand: "--name value" or "--name=value", and positional words.
struct Parsed {
  std::map<std::string, std::string> flags;
  std::vector<std::string> words;
};

std::optional<Parsed> parse(const std::vector<std::string>& args, size_t from,
                            const std::vector<std::string>& allowed, std::string* error) {
  Parsed p;
  for (size_t i = from; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!a.starts_with("--")) {
      p.words.push_back(a);
      continue;
    }
    const size_t eq = a.find('=');
    const std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      *error = "unknown flag --" + name;
      return std::nullopt;
    }
    if (eq != std::string::npos) {
      p.flags[name] = a.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      p.flags[name] = args[++i];
    } else {
      *error = "flag --" + name + " needs a value";
      return std::nullopt;
    }
  }
  return p;
}

// The database path as serve would find it; nullopt with *error if it does not exist yet.
std::optional<std::string> db_path(const Parsed& p, const EnvLookup& env, std::string* error) {
  std::string path = Config().db_path;
  if (auto it = p.flags.find("db"); it != p.flags.end()) {
    path = it->second;
  } else if (auto v = env("HERALD_DB"); v && !v->empty()) {
    path = *v;
  }
  struct stat st {};
  if (!is_postgres_uri(path) && ::stat(path.c_str(), &st) != 0) {
    *error = "no database at " + path + " (start herald serve once, or pass --db)";
    return std::nullopt;
  }
  return path;
}

std::string time_text(std::optional<TimeMs> t) {
  return t ? format_rfc3339(*t) : "never";
}

int create(const Parsed& p, const std::string& path, Clock& clock) {
  if (!p.words.empty()) return usage_error("unexpected argument '" + p.words.front() + "'");
  std::optional<TimeMs> expires_at;
  if (auto it = p.flags.find("expires"); it != p.flags.end()) {
    auto ms = parse_duration_ms(it->second);
    if (!ms || *ms == 0) {
      return usage_error("--expires: '" + it->second +
                         "' is not a duration (use e.g. 30m, 1h, 7d)");
    }
    expires_at = clock.now_ms() + *ms;
  }
  const auto name_it = p.flags.find("name");
  auto db = open_database(path, DatabaseOptions{1, nullptr});
  std::optional<std::string> app_id;
  if (auto it = p.flags.find("app"); it != p.flags.end()) {
    auto app = db->session()->apps().get(it->second);
    if (!app) return fail("no application '" + it->second + "'");
    app_id = app->id;
  }
  const std::string name = name_it != p.flags.end() ? name_it->second : "";
  const NewToken token = create_token(*db, clock, app_id, name, expires_at);
  std::cout << token.text << std::endl;
  std::cerr << "herald: created " << token.id << " ("
            << (app_id ? "reaches only application " + *app_id : std::string("admin"))
            << ", expires " << time_text(expires_at)
            << "); the token is shown once, store it now\n";
  return 0;
}

int list(const Parsed& p, const std::string& path, Clock& clock) {
  if (!p.words.empty()) return usage_error("unexpected argument '" + p.words.front() + "'");
  auto db = open_database(path, DatabaseOptions{1, nullptr});
  const TimeMs now = clock.now_ms();
  std::vector<std::vector<std::string>> rows = {{"ID", "SCOPE", "NAME", "CREATED", "EXPIRES"}};
  for (const auto& t : db->session()->tokens().list()) {
    std::string expires = time_text(t.expires_at);
    if (t.expires_at && *t.expires_at <= now) expires += " (expired)";
    rows.push_back({t.id, t.app_id.value_or("admin"), t.name.empty() ? "-" : t.name,
                    format_rfc3339(t.created_at), expires});
  }
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
  return 0;
}

int revoke(const Parsed& p, const std::string& path) {
  if (p.words.size() != 1) return usage_error("token revoke takes one TOKEN_ID");
  auto db = open_database(path, DatabaseOptions{1, nullptr});
  if (!db->session()->tokens().remove(p.words.front())) {
    return fail("no token '" + p.words.front() + "' (see herald token list)");
  }
  std::cerr << "herald: revoked " << p.words.front() << "\n";
  return 0;
}

}  // namespace

int token_command(const std::vector<std::string>& args, const EnvLookup& env, Clock& clock) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    }
  }
  if (args.empty()) {
    std::cerr << kUsage;
    return kExitCannotStart;
  }
  const std::string& command = args[0];
  std::vector<std::string> allowed = {"db"};
  if (command == "create") {
    allowed.insert(allowed.end(), {"app", "expires", "name"});
  } else if (command != "list" && command != "revoke") {
    return usage_error("unknown token command '" + command + "'");
  }
  std::string error;
  auto parsed = parse(args, 1, allowed, &error);
  if (!parsed) return usage_error(error);
  auto path = db_path(*parsed, env, &error);
  if (!path) return fail(error);
  try {
    if (command == "create") return create(*parsed, *path, clock);
    if (command == "list") return list(*parsed, *path, clock);
    return revoke(*parsed, *path);
  } catch (const std::exception& e) {
    return fail("token " + command + ": " + e.what());
  }
}

}  // namespace herald
