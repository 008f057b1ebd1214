#pragma once

namespace herald::pg {

class Connection;

// Brings the schema to the newest version, one transaction per migration, under an advisory
// lock: several processes starting at once on an empty database apply each migration once,
// the others wait and find it done. Idempotent.
void migrate(Connection& c);

// The schema version migrate() produces.
int latest_schema_version();

}  // namespace herald::pg
