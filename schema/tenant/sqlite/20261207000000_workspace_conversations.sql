-- Conversations about several documents ("Ask your documents"): their
-- document_id is '', and documents holds the public ids they cover,
-- separated by spaces ('' for every ready document of the tenant).
ALTER TABLE conversations ADD COLUMN documents TEXT NOT NULL DEFAULT '';
