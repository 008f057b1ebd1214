#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.h"
#include "db/message_store.h"
#include "db/task_store.h"

namespace herald {

class Enqueuer;
class Session;

// The kinds of background task herald runs (Svix's BackgroundTaskType): how each is made and
// how each takes one step. A step does a bounded amount of work through a session and records
// in the task how far it got; whoever steps it (TaskRunner) commits both together, so a task
// cut short anywhere resumes from its last committed step and does no step's work twice.

inline constexpr std::string_view kTaskPrefix = "qtask";

inline constexpr const char* kTaskRecover = "endpoint.recover";
inline constexpr const char* kTaskReplayMissing = "endpoint.replay";
inline constexpr const char* kTaskBulkReplay = "endpoint.bulk-replay";
inline constexpr const char* kTaskPurgeContent = "application.purge_content";
inline constexpr const char* kTaskAppStats = "application.stats";
inline constexpr const char* kTaskEventTypeAggregate = "event-type.aggregate";

// The messages a bulk replay sends again (Svix's BulkReplayIn): those of the endpoint's
// messages created in [since, until) that match every filter given.
struct BulkReplayFilter {
  TimeMs since = 0;
  TimeMs until = 0;
  std::optional<std::vector<std::string>> event_types;
  std::optional<std::string> channel;
  std::optional<std::string> tag;
  std::optional<DeliveryStatus> status;  // of its latest delivery to the endpoint
  std::optional<int> status_code_class;  // of its latest attempt there
};

// Re-queues the endpoint's failed deliveries created in [since, until).
BackgroundTask recover_task(const Endpoint& ep, TimeMs since, TimeMs until, TimeMs now);
// Sends the endpoint, once each, the messages created in [since, until) that its filters
// accept and that it has no delivery of.
BackgroundTask replay_missing_task(const Endpoint& ep, TimeMs since, TimeMs until, TimeMs now);
// Sends the endpoint again, once each, the messages it had deliveries of that match `f`.
BackgroundTask bulk_replay_task(const Endpoint& ep, const BulkReplayFilter& f, TimeMs now);
// Expunges every message of the application created before now.
BackgroundTask purge_content_task(const std::string& app_id, TimeMs now);
// Counts the messages created in [since, until) and their destinations, per application:
// those of `app_ids` (ids), or every application.
BackgroundTask app_stats_task(const std::optional<std::vector<std::string>>& app_ids, TimeMs since,
                              TimeMs until, TimeMs now);
// Lists, per application, the event types its enabled endpoints subscribe to.
BackgroundTask event_type_aggregate_task(TimeMs now);

// Why a task cannot go on (its endpoint was deleted): it ends failed with this message.
class TaskFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Takes one step of `t` at `now`: about `batch` rows' work at most, written through `s`;
// updates t's state and data, and its status once it is done. Throws TaskFailed when it
// cannot go on, DbError when the store fails. REQUIRES: a transaction on `s` that holds `t`.
void step_task(Session& s, Enqueuer& enqueuer, BackgroundTask& t, TimeMs now, int batch);

}  // namespace herald
