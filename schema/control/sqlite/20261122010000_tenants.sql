-- Tenant provisioning: encrypted credentials, the last error, and a lease so
-- only one process works on a provisioning row at a time.
ALTER TABLE vector_databases ADD COLUMN credentials TEXT NOT NULL DEFAULT '';
ALTER TABLE vector_databases ADD COLUMN error TEXT NOT NULL DEFAULT '';
ALTER TABLE vector_databases ADD COLUMN lease_until TIMESTAMP;
CREATE INDEX vector_databases_status_idx ON vector_databases (status);
CREATE INDEX vector_databases_location_idx ON vector_databases (location);

-- Runs of "migrate every tenant" and each tenant's outcome.
CREATE TABLE migration_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  public_id TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL,
  target_version TEXT NOT NULL DEFAULT '',
  total INTEGER NOT NULL DEFAULT 0,
  done INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  started_by TEXT NOT NULL DEFAULT '',
  started_at TIMESTAMP NOT NULL,
  finished_at TIMESTAMP
);

CREATE TABLE migration_results (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER NOT NULL REFERENCES migration_runs (id) ON DELETE CASCADE,
  vector_database_id INTEGER NOT NULL,
  from_version TEXT NOT NULL DEFAULT '',
  to_version TEXT NOT NULL DEFAULT '',
  duration_ms INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  finished_at TIMESTAMP NOT NULL
);
CREATE INDEX migration_results_run_id_idx ON migration_results (run_id);
