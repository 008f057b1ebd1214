#pragma once

namespace herald {

class ApiServer;

// Registers the delivery portal's routes (under /portal) on the API server.
void register_portal_routes(ApiServer& s);

}  // namespace herald
