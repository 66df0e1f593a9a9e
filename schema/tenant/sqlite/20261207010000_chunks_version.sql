-- atlas:delimiter -- end

-- A count of the writes to chunks (meta 'chunks_version'), which silo's
-- in-memory vector index of the tenant (store/sqlite_vectors.go) reads
-- before each search: the index is made again when the count has moved,
-- whichever process wrote.
INSERT INTO meta (key, value) VALUES ('chunks_version', '0') ON CONFLICT (key) DO NOTHING
-- end
CREATE TRIGGER chunks_version_insert AFTER INSERT ON chunks BEGIN
  UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'chunks_version';
END
-- end
CREATE TRIGGER chunks_version_delete AFTER DELETE ON chunks BEGIN
  UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'chunks_version';
END
-- end
CREATE TRIGGER chunks_version_update AFTER UPDATE OF document_id, embedding ON chunks BEGIN
  UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'chunks_version';
END
-- end
