-- Wider vectors: 2000 dimensions (HNSW's limit) at half precision. The
-- offline hashing embedder ranks far better wide; a model with fewer
-- dimensions is stored zero-padded, which leaves cosine similarity as it is.
-- Existing vectors cannot be converted: they are cleared, and the recorded
-- model with them, so silo re-embeds every document of the tenant.
DROP INDEX chunks_embedding_idx;
ALTER TABLE chunks ALTER COLUMN embedding TYPE halfvec(2000) USING NULL;
CREATE INDEX chunks_embedding_idx ON chunks USING hnsw (embedding halfvec_cosine_ops);
UPDATE meta SET value = 'none (vectors cleared by 20261122030000)' WHERE key = 'embedding_model';
