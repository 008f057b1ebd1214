#include "db/delivery_store.h"

namespace herald {

void DeliveryStats::add(DeliveryStatus status, int64_t n) {
  switch (status) {
    case DeliveryStatus::kSuccess:
      success += n;
      break;
    case DeliveryStatus::kPending:
      pending += n;
      break;
    case DeliveryStatus::kFail:
      fail += n;
      break;
    case DeliveryStatus::kSending:
      sending += n;
      break;
  }
}

std::optional<DeliveryStatus> DeliveryStats::overall() const {
  if (fail > 0) return DeliveryStatus::kFail;
  if (sending > 0) return DeliveryStatus::kSending;
  if (pending > 0) return DeliveryStatus::kPending;
  if (success > 0) return DeliveryStatus::kSuccess;
  return std::nullopt;
}

}  // namespace herald
