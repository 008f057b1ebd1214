// The herald executable: wires core, db, scheduler, sender, api and web together.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/server.h"
#include "api/tokens.h"
#include "cli/exit_status.h"
#include "cli/master_key_command.h"
#include "cli/migrate_store_command.h"
#include "cli/token_command.h"
#include "core/address_policy.h"
#include "core/config.h"
#include "core/heap.h"
#include "core/metrics.h"
#include "core/signing.h"
#include "db/database.h"
#include "db/operational_webhooks.h"
#include "scheduler/scheduler.h"
#include "scheduler/task_runner.h"
#include "web/portal.h"

namespace {

// project(VERSION) in CMakeLists.txt, which api/openapi.json's info.version must match too.
constexpr const char* kVersion = HERALD_VERSION;

constexpr const char* kUsage =
    "herald — outbound webhook delivery (Svix-compatible API, Standard Webhooks signing)\n"
    "\n"
    "usage: herald <command> [flags]\n"
    "\n"
    "commands:\n"
    "  serve      run the API, the scheduler and the sender (see herald serve --help)\n"
    "  token      create, list and revoke API tokens (see herald token --help)\n"
    "  master-key rotate the key that seals endpoint secrets (see herald master-key --help)\n"
    "  migrate-store\n"
    "             copy a stopped herald's data to another store, e.g. SQLite to PostgreSQL\n"
    "             (see herald migrate-store --help)\n"
    "  version    print the version\n"
    "  help       print this text\n";

// Every failure of serve is one before it runs: it cannot start.
int cannot_start(const std::string& message) {
  return herald::fail(message, herald::kExitCannotStart);
}

int serve(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << herald::serve_help();
      return 0;
    }
  }
  std::string error;
  auto config = herald::parse_serve_config(args, herald::process_env(), &error);
  if (!config) return cannot_start(error);
  spdlog::set_level(spdlog::level::from_str(config->log_level));

  // Signals are taken by one thread with sigwait; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  herald::SystemClock clock;
  std::unique_ptr<herald::Database> db;
  std::vector<std::string> key_notes;
  std::string key_error;
  db = herald::open_with_master_key(*config, herald::default_db_pool(*config), &key_notes,
                                    &key_error, /*exclusive=*/true);
  for (const auto& note : key_notes) std::cout << note << std::endl;
  if (!db) return cannot_start(key_error);
  try {
    if (config->admin_token) {
      herald::ensure_admin_token(*db, clock, *config->admin_token);
    } else if (auto token = herald::bootstrap_admin_token(*db, clock)) {
      std::cout << "admin token (shown once, store it now): " << *token << std::endl;
    }
  } catch (const std::exception& e) {
    return cannot_start("cannot open database " + db->describe() + ": " + e.what());
  }

  herald::Metrics metrics;
  herald::Scheduler::Options sopts;
  sopts.metrics = &metrics;
  sopts.retry = config->retry;
  sopts.max_in_flight = config->max_in_flight;
  sopts.endpoint_concurrency = config->endpoint_concurrency;
  sopts.lease_ms = config->lease_ms;
  sopts.request_timeout_ms = config->request_timeout_ms;
  sopts.connect_timeout_ms = config->connect_timeout_ms;
  sopts.disable_after_ms = config->disable_after_ms;
  sopts.retention_ms = config->retention_ms;
  sopts.message_retention_ms = config->message_retention_ms;
  // The SSRF guard is always on; the allow list only opens the ranges it names.
  std::string policy_error;
  auto policy = herald::AddressPolicy::parse(config->allow_private_cidrs, &policy_error);
  if (!policy) return cannot_start("HERALD_ALLOW_PRIVATE_CIDRS: " + policy_error);
  sopts.sender.address_policy = std::make_shared<const herald::AddressPolicy>(std::move(*policy));
  sopts.sender.ca_file = config->ca_file;
  if (!config->operator_url.empty()) {
    try {
      std::string why;
      herald::ensure_operator_channel(*db, clock, config->operator_url, *config->operator_scheme,
                                      *herald::parse_secret(*config->operator_secret, &why));
    } catch (const std::exception& e) {
      return cannot_start(std::string("cannot set up operational webhooks: ") + e.what());
    }
  }
  herald::Scheduler scheduler(*db, clock, sopts);
  // Background tasks (recover, replays, expunging an application, usage counts): a task a
  // process died in is resumed by this start (SQLite) or by any node once its lease lapses.
  herald::TaskRunner::Options topts;
  topts.lease_ms = config->lease_ms;
  herald::TaskRunner tasks(*db, clock, topts);

  herald::ApiOptions aopts;
  aopts.max_payload_bytes = config->max_payload_bytes;
  aopts.limits.max_connections = config->max_connections;
  aopts.limits.max_connections_per_client = config->max_connections_per_client;
  aopts.public_url = config->public_url;
  aopts.https_only = config->https_only;
  aopts.metrics = &metrics;
  aopts.wake_tasks = [&tasks] { tasks.wake(); };
  herald::ApiServer api(*db, clock, aopts);
  herald::register_portal_routes(api);
  int port = api.bind(config->listen_host, config->listen_port);
  if (port <= 0) {
    tasks.stop();
    scheduler.stop(0);
    return cannot_start("cannot listen on " + config->listen_host + ":" +
                        std::to_string(config->listen_port));
  }
  std::cout << "herald " << kVersion << " listening on http://" << config->listen_host << ":"
            << port << " (database " << db->describe() << ")" << std::endl;

  // Freed memory goes back to the system every half minute, so RSS follows what is in use.
  herald::HeapTrimmer trimmer(std::chrono::seconds(30));
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("signal {}: stopping intake, draining deliveries", sig);
    api.stop();
  });
  api.listen();
  // listen() returned: intake has stopped. Drain, record, exit.
  tasks.stop();
  scheduler.stop(config->shutdown_timeout_ms);
  if (signal_thread.joinable()) {
    pthread_kill(signal_thread.native_handle(), SIGTERM);  // wakes it if listen() failed
    signal_thread.join();
  }
  spdlog::info("herald stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "version" || args[0] == "--version") {
    std::cout << "herald " << kVersion << "\n";
    return 0;
  }
  if (args[0] == "serve") return serve({args.begin() + 1, args.end()});
  if (args[0] == "token") {
    herald::SystemClock clock;
    return herald::token_command({args.begin() + 1, args.end()}, herald::process_env(), clock);
  }
  if (args[0] == "migrate-store") {
    return herald::migrate_store_command({args.begin() + 1, args.end()}, herald::process_env());
  }
  if (args[0] == "master-key") {
    return herald::master_key_command({args.begin() + 1, args.end()}, herald::process_env());
  }
  return cannot_start("unknown command '" + args[0] + "' (see herald --help)");
}
