#include "cli/master_key_command.h"

#include <sys/stat.h>

#include <iostream>

#include "cli/exit_status.h"
#include "cli/key_file.h"
#include "core/encoding.h"
#include "core/secret_box.h"
#include "db/database.h"
#include "db/sealing.h"
#include "db/session.h"

namespace herald {
namespace {

constexpr const char* kUsage =
    "Usage: herald master-key rotate [--db PATH|URI] [--master-key-file PATH]\n"
    "\n"
    "Re-seals every endpoint secret under a new master key, in one transaction. Stop\n"
    "herald serve first: a server still running with the old key can no longer read or\n"
    "write secrets once the rotation commits.\n"
    "\n"
    "The current key comes from HERALD_MASTER_KEY, else from the key file\n"
    "(HERALD_MASTER_KEY_FILE, default <db>.key), as for herald serve.\n"
    "  - key file: the new key is written to <file>.new (mode 0600, synced) before the\n"
    "    commit and renamed over <file> after it. If herald stops in between, the next\n"
    "    herald serve or rotate finds that <file>.new opens the database and finishes.\n"
    "  - HERALD_MASTER_KEY: the new key is printed once on stdout, before the commit; set\n"
    "    HERALD_MASTER_KEY to it before herald next starts.\n"
    "\n"
    "Flags:\n"
    "  --db PATH|URI            the database (HERALD_DB, default ./herald.db): a SQLite file\n"
    "                           or a postgresql:// URI (stop every herald serve on it first)\n"
    "  --master-key-file PATH   the key file (HERALD_MASTER_KEY_FILE, default <db>.key)\n";

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// The database opened under `key`; nullptr if it is sealed under another. Other failures throw.
std::unique_ptr<Database> try_open(const Config& config, int max_connections,
                                   const std::string& key, bool exclusive) {
  try {
    // The process that holds the file (herald serve) keeps space back on its disk
    // (DiskReserve) and bounds SQLite's memory.
    return open_database(config.db_path,
                         DatabaseOptions{max_connections, std::make_shared<const SecretBox>(key),
                                         exclusive, exclusive ? config.disk_reserve_bytes : 0,
                                         exclusive ? config.sqlite_memory_bytes : 0});
  } catch (const MasterKeyMismatch&) {
    return nullptr;
  }
}

std::unique_ptr<Database> open_from_key_file(const Config& config, int max_connections,
                                             bool exclusive, std::vector<std::string>* notes,
                                             std::string* error) {
  const std::string& file = config.master_key_file;
  const std::string pending = file + ".new";
  const auto mismatch = [&](const std::string& what) {
    *error = what + " does not match the database " + describe_location(config.db_path) +
             ": its secrets were sealed with another master key";
    return nullptr;
  };

  bool missing = false;
  auto current = read_key_file(file, &missing, error);
  if (!current && !missing) return nullptr;
  std::optional<std::string> next;
  if (exists(pending)) {
    bool pending_missing = false;
    next = read_key_file(pending, &pending_missing, error);
    if (!next) return nullptr;
  }

  if (current) {
    if (auto db = try_open(config, max_connections, *current, exclusive)) {
      if (next) {
        if (!remove_key_file(pending, error)) return nullptr;
        notes->push_back("removed " + pending + ", left by a master key rotation that did not " +
                         "commit");
      }
      return db;
    }
    if (!next) return mismatch("the master key in " + file);
  }
  if (next) {
    auto db = try_open(config, max_connections, *next, exclusive);
    if (!db)
      return mismatch("the master key in " +
                      (current ? file + " (and in " + pending + ")" : pending));
    if (!replace_key_file(pending, file, error)) return nullptr;
    notes->push_back("finished an interrupted master key rotation: " + pending + " is now " + file);
    return db;
  }

  // No key file: the first start, unless secrets were sealed already.
  {
    auto plain = open_database(config.db_path, DatabaseOptions{1, nullptr, exclusive});
    auto session = plain->session();
    if (is_sealed(*session)) {
      *error = "the database " + describe_location(config.db_path) +
               " is sealed with a master key, but the key file " + file +
               " does not exist (restore it, or set HERALD_MASTER_KEY)";
      return nullptr;
    }
  }
  const std::string key = random_bytes(SecretBox::kKeySize);
  if (!create_key_file(file, key, error)) return nullptr;
  notes->push_back("created the master key file " + file +
                   " (mode 0600); back it up: without it the endpoint secrets cannot be read");
  auto db = try_open(config, max_connections, key, exclusive);
  if (!db) return mismatch("the new master key in " + file);
  return db;
}

// Re-seals everything in `db` under `to`, in one transaction; returns how many secrets.
int reseal(Database& db, const SecretBox& to) {
  return reseal_all(db, to);
}

// After the rotation: drops what the old key sealed from the file. A failure leaves the
// rotation done, so it is only reported.
void scrub_after_rotation(Database& db) {
  try {
    db.scrub();
  } catch (const std::exception& e) {
    std::cerr << "herald: warning: the database file may still hold secrets sealed with the old "
                 "key (run VACUUM on it): "
              << e.what() << "\n";
  }
}

int rotate(const Config& config) {
  if (!is_postgres_uri(config.db_path) && !exists(config.db_path)) {
    return fail("no database at " + describe_location(config.db_path));
  }
  std::vector<std::string> notes;
  std::string error;
  auto db = open_with_master_key(config, 1, &notes, &error);
  for (const auto& note : notes) std::cerr << "herald: " << note << "\n";
  if (!db) return fail(error);

  const std::string key = random_bytes(SecretBox::kKeySize);
  const SecretBox next(key);
  if (config.master_key) {
    // Shown before the commit: after it, this is the only copy.
    std::cout << base64_encode(key) << std::endl;
    std::cerr << "herald: the new master key is above (shown once); set HERALD_MASTER_KEY to it "
                 "before herald next starts\n";
    int n = 0;
    try {
      n = reseal(*db, next);
    } catch (const std::exception& e) {
      return fail(std::string("rotation failed, nothing changed (keep the old key): ") + e.what());
    }
    scrub_after_rotation(*db);
    std::cerr << "herald: re-sealed " << n << " endpoint secrets under the new master key\n";
    return 0;
  }

  const std::string& file = config.master_key_file;
  const std::string pending = file + ".new";
  if (!create_key_file(pending, key, &error)) return fail(error);
  int n = 0;
  try {
    n = reseal(*db, next);
  } catch (const std::exception& e) {
    std::string ignored;
    remove_key_file(pending, &ignored);
    return fail(std::string("rotation failed, nothing changed: ") + e.what());
  }
  if (!replace_key_file(pending, file, &error)) {
    return fail("the secrets are sealed under the new key in " + pending + ", but " + error +
                "; herald serve finishes the rotation when it next starts");
  }
  scrub_after_rotation(*db);
  std::cerr << "herald: rotated the master key in " << file << ": re-sealed " << n
            << " endpoint secrets\n";
  return 0;
}

}  // namespace

std::unique_ptr<Database> open_with_master_key(const Config& config, int max_connections,
                                               std::vector<std::string>* notes, std::string* error,
                                               bool exclusive) {
  try {
    if (!config.master_key) {
      return open_from_key_file(config, max_connections, exclusive, notes, error);
    }
    auto db = try_open(config, max_connections, *config.master_key, exclusive);
    if (!db) {
      *error = "HERALD_MASTER_KEY does not match the database " +
               describe_location(config.db_path) +
               ": its secrets were sealed with another master key";
    }
    return db;
  } catch (const std::exception& e) {
    *error = "cannot open database " + describe_location(config.db_path) + ": " + e.what();
    return nullptr;
  }
}

int master_key_command(const std::vector<std::string>& args, const EnvLookup& env) {
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
  if (args[0] != "rotate") {
    return fail("unknown master-key command '" + args[0] + "' (see herald master-key --help)",
                kExitCannotStart);
  }
  // Only the settings that locate the database and its key; the rest of serve's are not read.
  std::vector<std::string> flags;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool known = a == "--db" || a == "--master-key-file" || a.starts_with("--db=") ||
                       a.starts_with("--master-key-file=");
    if (!known)
      return fail("unexpected argument '" + a + "' (see herald master-key --help)",
                  kExitCannotStart);
    flags.push_back(a);
    if (a.find('=') == std::string::npos) {
      if (i + 1 == args.size()) return fail("flag " + a + " needs a value", kExitCannotStart);
      flags.push_back(args[++i]);
    }
  }
  const EnvLookup key_env = [&env](const std::string& name) -> std::optional<std::string> {
    if (name == "HERALD_DB" || name == "HERALD_MASTER_KEY" || name == "HERALD_MASTER_KEY_FILE") {
      return env(name);
    }
    return std::nullopt;
  };
  std::string error;
  auto config = parse_serve_config(flags, key_env, &error);
  if (!config) return fail(error, kExitCannotStart);
  return rotate(*config);
}

}  // namespace herald
