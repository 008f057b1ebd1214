#include "cli/migrate_store_command.h"

#include <sys/stat.h>

#include <iostream>
#include <memory>

#include "cli/exit_status.h"
#include "cli/master_key_command.h"
#include "db/copy.h"
#include "db/database.h"
#include "db/sealing.h"

namespace herald {
namespace {

constexpr const char* kUsage =
    "Usage: herald migrate-store --from PATH|URI --to URI [--master-key-file PATH]\n"
    "\n"
    "Copies everything a stopped herald keeps (applications, endpoints and their signing\n"
    "keys, event types, tokens, messages with their pending deliveries and attempts) from one\n"
    "store to another: from the SQLite file to PostgreSQL when one machine is no longer\n"
    "enough. Stop herald serve first. The target should be an empty database; what it already\n"
    "holds (by id) is skipped, so a copy cut short is finished by running it again. At the end\n"
    "the rows of each kind are counted in both stores: the command fails if they differ.\n"
    "\n"
    "Secrets travel sealed: the source's master key (HERALD_MASTER_KEY, else the key file,\n"
    "default <from>.key, as for herald serve) must open them, and it becomes the target's. Run\n"
    "every herald serve on the target with HERALD_MASTER_KEY set to that key.\n"
    "Idempotency keys (kept for 12 hours, for replays) are not copied.\n"
    "\n"
    "Flags:\n"
    "  --from PATH|URI          the store to copy from (a SQLite file, or a postgresql:// URI)\n"
    "  --to URI                 the store to copy into (a postgresql:// URI, or a SQLite path)\n"
    "  --master-key-file PATH   the source's key file (HERALD_MASTER_KEY_FILE, default\n"
    "                           <from>.key), when HERALD_MASTER_KEY is unset\n";

}  // namespace

int migrate_store_command(const std::vector<std::string>& args, const EnvLookup& env) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    }
  }
  std::string from, to, key_file;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string value;
    if (const size_t eq = a.find('='); a.starts_with("--") && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (a.starts_with("--")) {
      if (i + 1 == args.size()) return fail("flag " + a + " needs a value", kExitCannotStart);
      value = args[++i];
    }
    if (a == "--from") {
      from = value;
    } else if (a == "--to") {
      to = value;
    } else if (a == "--master-key-file") {
      key_file = value;
    } else {
      return fail("unexpected argument '" + a + "' (see herald migrate-store --help)",
                  kExitCannotStart);
    }
  }
  if (from.empty() || to.empty()) {
    return fail("migrate-store needs --from and --to (see herald migrate-store --help)",
                kExitCannotStart);
  }
  if (from == to) return fail("--from and --to name the same store", kExitCannotStart);
  if (struct stat st{}; !is_postgres_uri(from) && ::stat(from.c_str(), &st) != 0) {
    return fail("no database at " + from + " (--from names the store to copy from)");
  }

  // The source opens under its master key exactly as herald serve would find it.
  std::vector<std::string> flags = {"--db", from};
  if (!key_file.empty()) flags.insert(flags.end(), {"--master-key-file", key_file});
  const EnvLookup key_env = [&env](const std::string& name) -> std::optional<std::string> {
    if (name == "HERALD_MASTER_KEY" || name == "HERALD_MASTER_KEY_FILE") return env(name);
    return std::nullopt;
  };
  std::string error;
  auto config = parse_serve_config(flags, key_env, &error);
  if (!config) return fail(error, kExitCannotStart);
  std::vector<std::string> notes;
  // Held, so that no herald serves from it while it is copied.
  auto source = open_with_master_key(*config, 2, &notes, &error, /*exclusive=*/true);
  for (const auto& note : notes) std::cerr << "herald: " << note << "\n";
  if (!source) return fail(error);

  try {
    auto target = open_database(to, DatabaseOptions{2, source->shared_secret_box(), true});
    std::cerr << "herald: copying " << source->describe() << " into " << target->describe() << "\n";
    const CopyResult r = copy_store(
        *source, *target, [](const std::string& line) { std::cerr << "herald: " << line << "\n"; });
    std::cerr << "herald: copied " << r.messages_copied << " messages (" << r.messages_present
              << " were there already)\n"
              << "herald: source: " << r.source.describe() << "\n"
              << "herald: target: " << r.target.describe() << "\n";
    if (!r.verified()) {
      return fail(
          "the counts differ: the target held rows of its own, or the source changed during the "
          "copy (was herald serve stopped?)");
    }
    std::cerr << "herald: verified: every count matches\n";
    return 0;
  } catch (const MasterKeyMismatch& e) {
    return fail(std::string("the target is sealed with another master key: ") + e.what());
  } catch (const std::exception& e) {
    return fail(std::string("migrate-store: ") + e.what());
  }
}

}  // namespace herald
