#include "core/types.h"

namespace herald {

const char* status_text(DeliveryStatus s) {
  switch (s) {
    case DeliveryStatus::kSuccess:
      return "success";
    case DeliveryStatus::kPending:
      return "pending";
    case DeliveryStatus::kFail:
      return "fail";
    case DeliveryStatus::kSending:
      return "sending";
  }
  return "unknown";
}

const char* scheme_name(SignatureScheme s) {
  switch (s) {
    case SignatureScheme::kStandard:
      return "standard";
    case SignatureScheme::kStripe:
      return "stripe";
    case SignatureScheme::kGithub:
      return "github";
    case SignatureScheme::kEd25519:
      return "ed25519";
  }
  return "standard";
}

std::optional<SignatureScheme> parse_scheme(std::string_view name) {
  for (auto s : {SignatureScheme::kStandard, SignatureScheme::kStripe, SignatureScheme::kGithub,
                 SignatureScheme::kEd25519}) {
    if (name == scheme_name(s)) return s;
  }
  return std::nullopt;
}

const char* key_kind_name(KeyKind k) {
  switch (k) {
    case KeyKind::kEd25519:
      return "ed25519";
    case KeyKind::kTlsClient:
      return "tls-client";
    case KeyKind::kHmac:
      break;
  }
  return "hmac";
}

std::optional<KeyKind> parse_key_kind(std::string_view name) {
  if (name == "hmac") return KeyKind::kHmac;
  if (name == "ed25519") return KeyKind::kEd25519;
  if (name == "tls-client") return KeyKind::kTlsClient;
  return std::nullopt;
}

KeyKind key_kind_for(SignatureScheme s) {
  return s == SignatureScheme::kEd25519 ? KeyKind::kEd25519 : KeyKind::kHmac;
}

}  // namespace herald
