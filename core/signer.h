#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/signing.h"
#include "core/types.h"

namespace herald {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// How one endpoint's deliveries are signed: its scheme, the header that carries the signature
// and its keys, prepared once for many deliveries. What each scheme sends:
//   standard, ed25519: webhook-signature and svix-signature, both "v1,<base64 HMAC>" per HMAC
//     key and "v1a,<base64 Ed25519>" per Ed25519 key, space-separated, over id.ts.body (a
//     rotation between the two kinds carries both during its grace period);
//   stripe: stripe-signature "t=<ts>,v1=<hex HMAC>" with one v1= per HMAC key, over ts.body,
//     keyed with the whsec_ secret text itself (as Stripe's libraries key);
//   github: x-hub-signature-256 "sha256=<hex HMAC>" of the body under the current HMAC key
//     only, keyed with the whsec_ secret text (GitHub's format holds one signature).
// A renamed header replaces the scheme's header(s) with that one name.
class Signer {
 public:
  // Signs nothing.
  Signer() = default;
  // `keys`: current first, then rotated-out keys still in their grace period. Keys of a kind
  // the scheme cannot carry are left out.
  Signer(SignatureScheme scheme, std::optional<std::string> header, std::vector<SigningKey> keys);

  // True if no key fits the scheme: it would sign nothing.
  bool empty() const { return keys_.empty(); }

  // Appends the header(s) carrying the signature of (msg_id, timestamp_s, body).
  void sign(std::string_view msg_id, int64_t timestamp_s, std::string_view body,
            HeaderList& out) const;

  // The lower-case names of the headers sign() writes for `scheme` and `header`.
  static std::vector<std::string> header_names(SignatureScheme scheme,
                                               const std::optional<std::string>& header);

 private:
  struct Key {
    KeyKind kind;
    std::string hmac_key;  // what HMAC is keyed with (raw bytes, or the whsec_ text)
    std::optional<Ed25519Key> ed25519;
  };
  std::string value(std::string_view msg_id, int64_t timestamp_s, std::string_view body) const;
  // The names sign() writes, a renamed header as it was given.
  static std::vector<std::string> names_sent(SignatureScheme scheme,
                                             const std::optional<std::string>& header);

  SignatureScheme scheme_ = SignatureScheme::kStandard;
  std::vector<std::string> names_;  // the headers the signature goes in
  std::vector<Key> keys_;
};

}  // namespace herald
