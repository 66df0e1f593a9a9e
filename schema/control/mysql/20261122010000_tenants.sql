-- Tenant provisioning: encrypted credentials, the last error, and a lease so
-- only one process works on a provisioning row at a time.
ALTER TABLE vector_databases
  ADD COLUMN credentials TEXT NOT NULL,
  ADD COLUMN error TEXT NOT NULL,
  ADD COLUMN lease_until DATETIME(6) NULL,
  ADD INDEX vector_databases_status_idx (status),
  ADD INDEX vector_databases_location_idx (location);

-- Runs of "migrate every tenant" and each tenant's outcome.
CREATE TABLE migration_runs (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  public_id VARCHAR(32) NOT NULL UNIQUE,
  status VARCHAR(16) NOT NULL,
  target_version VARCHAR(64) NOT NULL DEFAULT '',
  total INT NOT NULL DEFAULT 0,
  done INT NOT NULL DEFAULT 0,
  failed INT NOT NULL DEFAULT 0,
  started_by VARCHAR(255) NOT NULL DEFAULT '',
  started_at DATETIME(6) NOT NULL,
  finished_at DATETIME(6) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE migration_results (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  run_id BIGINT NOT NULL,
  vector_database_id BIGINT NOT NULL,
  from_version VARCHAR(64) NOT NULL DEFAULT '',
  to_version VARCHAR(64) NOT NULL DEFAULT '',
  duration_ms BIGINT NOT NULL DEFAULT 0,
  error TEXT NOT NULL,
  finished_at DATETIME(6) NOT NULL,
  INDEX migration_results_run_id_idx (run_id),
  CONSTRAINT migration_results_run_id_fk FOREIGN KEY (run_id) REFERENCES migration_runs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
