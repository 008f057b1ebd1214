#include "core/signer.h"

#include "core/ascii.h"
#include "core/encoding.h"

namespace herald {

Signer::Signer(SignatureScheme scheme, std::optional<std::string> header,
               std::vector<SigningKey> keys)
    : scheme_(scheme), names_(names_sent(scheme, header)) {
  const bool standard = scheme == SignatureScheme::kStandard || scheme == SignatureScheme::kEd25519;
  for (auto& k : keys) {
    if (k.kind == KeyKind::kTlsClient) continue;  // no signing key
    if (k.kind == KeyKind::kEd25519) {
      if (standard) keys_.push_back(Key{k.kind, {}, Ed25519Key(k.bytes)});
    } else if (standard) {
      keys_.push_back(Key{k.kind, std::move(k.bytes), std::nullopt});
    } else {
      // Stripe's and GitHub's libraries key HMAC with the secret's text as given to them.
      keys_.push_back(Key{k.kind, shown_secret(k), std::nullopt});
    }
    if (scheme == SignatureScheme::kGithub && !keys_.empty()) break;  // one signature only
  }
}

std::string Signer::value(std::string_view msg_id, int64_t timestamp_s,
                          std::string_view body) const {
  std::string out;
  switch (scheme_) {
    case SignatureScheme::kStandard:
    case SignatureScheme::kEd25519:
      for (const auto& k : keys_) {
        if (!out.empty()) out += ' ';
        out += k.ed25519 ? sign_v1a(*k.ed25519, msg_id, timestamp_s, body)
                         : sign_v1(k.hmac_key, msg_id, timestamp_s, body);
      }
      break;
    case SignatureScheme::kStripe: {
      const std::string ts = std::to_string(timestamp_s);
      std::string signed_content;
      signed_content.reserve(ts.size() + 1 + body.size());
      signed_content.append(ts).append(".").append(body);
      out = "t=" + ts;
      for (const auto& k : keys_)
        out += ",v1=" + hex_encode(hmac_sha256(k.hmac_key, signed_content));
      break;
    }
    case SignatureScheme::kGithub:
      if (!keys_.empty()) out = "sha256=" + hex_encode(hmac_sha256(keys_.front().hmac_key, body));
      break;
  }
  return out;
}

void Signer::sign(std::string_view msg_id, int64_t timestamp_s, std::string_view body,
                  HeaderList& out) const {
  if (keys_.empty()) return;
  std::string v = value(msg_id, timestamp_s, body);
  for (size_t i = 0; i + 1 < names_.size(); ++i) out.emplace_back(names_[i], v);
  out.emplace_back(names_.back(), std::move(v));
}

std::vector<std::string> Signer::names_sent(SignatureScheme scheme,
                                            const std::optional<std::string>& header) {
  if (header) return {*header};
  switch (scheme) {
    case SignatureScheme::kStripe:
      return {"stripe-signature"};
    case SignatureScheme::kGithub:
      return {"x-hub-signature-256"};
    case SignatureScheme::kStandard:
    case SignatureScheme::kEd25519:
      break;
  }
  return {"webhook-signature", "svix-signature"};
}

std::vector<std::string> Signer::header_names(SignatureScheme scheme,
                                              const std::optional<std::string>& header) {
  std::vector<std::string> names = names_sent(scheme, header);
  for (auto& n : names) n = ascii_lower(n);
  return names;
}

}  // namespace herald
