#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
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

// How deliveries to an endpoint are signed (core/signer.h says what each sends).
//   kStandard: Standard Webhooks (webhook-signature, and the same under svix-signature);
//   kStripe:   Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256>;
//   kGithub:   X-Hub-Signature-256: sha256=<hex HMAC-SHA256>;
//   kEd25519:  Standard Webhooks' asymmetric v1a signatures.
enum class SignatureScheme : int { kStandard = 0, kStripe = 1, kGithub = 2, kEd25519 = 3 };

// "standard", "stripe", "github", "ed25519"; and back (nullopt for anything else).
const char* scheme_name(SignatureScheme s);
std::optional<SignatureScheme> parse_scheme(std::string_view name);

// What a key an endpoint keeps sealed in the store is. kEd25519 signs only under kEd25519 (and
// kStandard, during a rotation between the two); every other scheme signs with kHmac keys.
// kTlsClient is no signing key: the PEM private key of the endpoint's client certificate.
enum class KeyKind : int { kHmac = 0, kEd25519 = 1, kTlsClient = 2 };

// "hmac", "ed25519", "tls-client"; and back.
const char* key_kind_name(KeyKind k);
std::optional<KeyKind> parse_key_kind(std::string_view name);

// The kind of key a scheme signs with.
KeyKind key_kind_for(SignatureScheme s);

// A signing key of an endpoint: for kHmac the HMAC key bytes, for kEd25519 the 32-byte
// private seed (the public key is derived from it).
struct SigningKey {
  KeyKind kind = KeyKind::kHmac;
  std::string bytes;
  bool operator==(const SigningKey&) const = default;
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
  SignatureScheme signature_scheme = SignatureScheme::kStandard;
  // The header that carries the signature instead of the scheme's own (nullopt: the scheme's).
  std::optional<std::string> signature_header;
  std::optional<TimeMs> failing_since;  // first failure since the last success, if failing
  // The PEM certificate (chain) it presents to TLS servers that ask for one (mTLS); its
  // private key is a kTlsClient key, sealed in the store. nullopt: none.
  std::optional<std::string> client_cert;
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
};

struct EventType {
  std::string name;
  std::string description = {};
  bool archived = false;
  bool deprecated = false;
  std::optional<std::string> schemas_json = {};  // raw JSON text, as given
  std::optional<std::string> group_name = {};
  // Svix's featureFlags: only callers granted every one of them see the type (none: everyone).
  std::optional<std::vector<std::string>> feature_flags = {};
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
  // When its deliveries are first due (Svix's deliverAt); nullopt: at once. Resends and
  // retries are not held back by it.
  std::optional<TimeMs> deliver_at;
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
  int response_status_code = 0;    // 0: no HTTP response (timeout, network error)
  std::string response;            // first 20 KB of the body, or the error text; "" once expunged
  bool response_expunged = false;  // the response was deleted through the API
  int64_t response_duration_ms = 0;
  DeliveryStatus status = DeliveryStatus::kFail;
  TriggerType trigger = TriggerType::kScheduled;
  std::string request_headers_json;  // the headers sent, as a JSON object (no secrets)
  TimeMs timestamp = 0;
};

}  // namespace herald
