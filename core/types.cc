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

}  // namespace herald
