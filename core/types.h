#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"

namespace herald {

// Svix's MessageStatus numbers; used for deliveries and attempts.
enum class DeliveryStatus : int { kSuccess = 0, kPending = 1, kFail = 2, kSending = 3 };

// "success", "pending", "fail", "sending".
const char* status_text(DeliveryStatus s);

// How an attempt came about (Svix's MessageAttemptTriggerType).
enum class TriggerType : int { kScheduled = 0, kManual = 1 };

struct Application {
  std::string id;
  std::optional<std::string> uid;
  std::string name;
  std::optional<int> throttle_rate;
  std::map<std::string, std::string> metadata;
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
  // Changes with every write to the application's endpoints (their fields, keys, enabled
  // state or existence), whichever process makes it: what caches of endpoints check.
  int64_t endpoints_version = 0;
};

struct Endpoint {
  std::string id;
  std::string app_id;
  std::optional<std::string> uid;
  std::string url;
  std::string description;
  std::optional<int> throttle_rate;
  bool disabled = false;
  std::optional<std::string> disabled_reason;
  std::optional<std::vector<std::string>> event_types;  // nullopt: every event type
  std::optional<std::vector<std::string>> channels;     // nullopt: every channel
  std::map<std::string, std::string> metadata;
  std::map<std::string, std::string> headers;  // custom headers sent with each delivery
  std::optional<TimeMs> failing_since;         // first failure since the last success, if failing
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
};

// A signing key of an endpoint. The current one has no expiry; rotated-out ones expire at the
// end of their grace period.
struct EndpointSecret {
  std::string key;  // raw key bytes
  std::optional<TimeMs> expires_at;
};

struct EventType {
  std::string name;
  std::string description = {};
  bool archived = false;
  bool deprecated = false;
  std::optional<std::string> schemas_json = {};  // raw JSON text, as given
  std::optional<std::string> group_name = {};
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
};

struct Message {
  std::string id;
  std::string app_id;
  std::optional<std::string> event_id;
  std::string event_type;
  std::string payload;           // the exact JSON text signed and sent; empty once expired
  bool payload_expired = false;  // purged by retention
  std::optional<std::vector<std::string>> channels;
  std::optional<std::vector<std::string>> tags;
  TimeMs timestamp = 0;
};

// One (message, endpoint) pair to deliver: the queue row.
struct Delivery {
  std::string id;
  std::string app_id;
  std::string msg_id;
  std::string endpoint_id;
  DeliveryStatus status = DeliveryStatus::kPending;
  int attempts = 0;            // attempts made so far
  TimeMs next_attempt_at = 0;  // when due (pending only)
  TriggerType trigger = TriggerType::kScheduled;
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
  // The claim that leases it while sending (0: none, or a store whose queue one process
  // owns). Ending the claim applies only while it still holds, so a process whose lease
  // lapsed cannot overwrite the work of the one that took the delivery over.
  int64_t claim = 0;
};

// One HTTP try of a delivery.
struct Attempt {
  std::string id;
  std::string app_id;
  std::string msg_id;
  std::string endpoint_id;
  std::string delivery_id;
  std::string url;
  int response_status_code = 0;  // 0: no HTTP response (timeout, network error)
  std::string response;          // first 20 KB of the body, or the error text
  int64_t response_duration_ms = 0;
  DeliveryStatus status = DeliveryStatus::kFail;
  TriggerType trigger = TriggerType::kScheduled;
  std::string request_headers_json;  // the headers sent, as a JSON object (no secrets)
  TimeMs timestamp = 0;
};

}  // namespace herald
