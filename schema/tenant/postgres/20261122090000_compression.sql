-- Column compression chosen for what the columns hold.
--
-- A chunk's embedding: halfvec is stored "external" by default, so each
-- 4,000-byte halfvec(2000) went to the TOAST table uncompressed, two TOAST
-- rows and their index entries a chunk. The offline embedder's vectors are
-- mostly zeros; compressed with lz4 they stay in the row at about a third of
-- the size, which made inserts about 1.5 times and exact scans 1.4 times
-- faster in a test of 3,000 such vectors (BENCHMARKS.md, issue 4). A
-- model's dense vectors do not compress and go to TOAST as before.
--
-- A PDF's bytes and a page's PNG are compressed already: they are stored
-- without another try (pglz spent CPU on every upload to save little).
--
-- lz4 needs a server built with it (Debian's, Neon's and most are); without
-- it the embeddings keep the default compression.
ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE EXTENDED;
DO $$
BEGIN
  ALTER TABLE chunks ALTER COLUMN embedding SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  RAISE NOTICE 'lz4 is not available: chunk embeddings keep the default compression';
END $$;
ALTER TABLE files ALTER COLUMN content SET STORAGE EXTERNAL;
ALTER TABLE page_images ALTER COLUMN png SET STORAGE EXTERNAL;
