-- The document index doubles as the durable ingestion queue: a worker leases
-- a queued document, reports pages done, and ends it ready or failed.
ALTER TABLE documents
  ADD COLUMN pages_done INT NOT NULL DEFAULT 0,
  ADD COLUMN empty_pages INT NOT NULL DEFAULT 0,
  ADD COLUMN chunks INT NOT NULL DEFAULT 0,
  ADD COLUMN attempts INT NOT NULL DEFAULT 0,
  ADD COLUMN lease_until DATETIME(6) NULL,
  ADD INDEX documents_status_idx (status, id);
