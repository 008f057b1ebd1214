#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sender/sender.h"

namespace herald {

struct Delivery;
struct Target;

// The HTTP request of one delivery attempt: what the sender sends, and its headers as the
// attempt records them.
struct BuiltRequest {
  DeliveryJob job;
  std::string recorded_headers_json;
};

// The request for `d` to `target` signed at `timestamp_s`: the endpoint's own headers, then
// the Standard Webhooks id and timestamp (and the same values under svix-* for receivers
// written against Svix), then the signature in the endpoint's scheme (core/signer.h). The
// body is shared, never copied.
BuiltRequest build_request(const Delivery& d, const Target& target,
                           std::shared_ptr<const std::string> body, int64_t timestamp_s,
                           int64_t timeout_ms, int64_t connect_timeout_ms);

// The headers of a request as recorded with its attempt: a JSON object, sensitive values
// masked (the signature is not a secret and stays).
std::string recorded_headers(const std::vector<std::pair<std::string, std::string>>& headers);

}  // namespace herald
