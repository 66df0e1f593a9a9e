-- Each installation gets an id, in its tenant databases' names, so one that
-- shares a database server (or a Neon account) with another never takes the
-- other's tenants for its own orphans. A directory row keeps its database's
-- name.
CREATE TABLE settings (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  value TEXT NOT NULL
);
ALTER TABLE vector_databases ADD COLUMN name VARCHAR(64) NOT NULL DEFAULT '';
UPDATE vector_databases SET name = external_id WHERE engine <> 'neon';
