-- The HNSW index of the chunks' vectors moves from the whole halfvec(2000)
-- to a 250-number sketch of it, and to the chunks of long documents only.
--
-- The sketch is the sum of the vector's eight 250-number blocks. For the
-- offline embedder, whose features are hashed into 2,000 buckets, it is the
-- same features hashed into 250; for a model's dense vectors it is a fixed
-- linear projection. Its graph pages hold about ten vectors where the whole
-- vector's held one.
--
-- Even so, an HNSW insert costs about 0.4 ms of PostgreSQL's CPU, most of a
-- chunk's write (BENCHMARKS.md, issue 4), and it only pays for documents
-- long enough that ranking all their chunks exactly would be slow. A chunk
-- is in the index when its document has more than 400 chunks (ann): a
-- search of such a document takes its 400 closest chunks by sketch from the
-- index and ranks them by the whole vector; a search of a shorter one ranks
-- all its chunks exactly (rag/search.go).
CREATE FUNCTION embedding_sketch(e halfvec) RETURNS halfvec
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN subvector(e, 1, 250) + subvector(e, 251, 250) + subvector(e, 501, 250) + subvector(e, 751, 250)
    + subvector(e, 1001, 250) + subvector(e, 1251, 250) + subvector(e, 1501, 250) + subvector(e, 1751, 250);
ALTER TABLE chunks ADD COLUMN ann BOOLEAN NOT NULL DEFAULT false;
-- Documents that are long already go into the index as it is built (400 is
-- rag's annChunks).
UPDATE chunks SET ann = true
  WHERE document_id IN (SELECT document_id FROM chunks GROUP BY document_id HAVING count(*) > 400);
DROP INDEX chunks_embedding_idx;
CREATE INDEX chunks_embedding_sketch_idx ON chunks USING hnsw ((embedding_sketch(embedding)::halfvec(250)) halfvec_cosine_ops)
  WITH (m = 8, ef_construction = 16) WHERE ann;
