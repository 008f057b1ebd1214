#pragma once

namespace herald::sqlite {

class Connection;

// Brings the schema to the newest version, one transaction per migration. Idempotent.
void migrate(Connection& c);

// The schema version migrate() produces.
int latest_schema_version();

}  // namespace herald::sqlite
