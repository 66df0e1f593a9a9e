-- The SHA-256 of each document's bytes (hex), so that the same file
-- uploaded again by the same person is recognised instead of stored twice.
ALTER TABLE documents ADD COLUMN sha256 CHAR(64) NOT NULL DEFAULT '';
CREATE INDEX documents_user_id_sha256_idx ON documents (user_id, sha256);
