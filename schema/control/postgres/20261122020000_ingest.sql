-- The document index doubles as the durable ingestion queue: a worker leases
-- a queued document, reports pages done, and ends it ready or failed.
ALTER TABLE documents ADD COLUMN pages_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE documents ADD COLUMN empty_pages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE documents ADD COLUMN chunks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE documents ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE documents ADD COLUMN lease_until TIMESTAMPTZ;
CREATE INDEX documents_status_idx ON documents (status, id);
