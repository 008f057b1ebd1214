#include "web/portal.h"

#include "api/server.h"

namespace herald {

// The portal is not built yet; herald serves only the JSON API for now.
void register_portal_routes(ApiServer&) {}

}  // namespace herald
