-- A cheaper HNSW graph for the chunks' vectors: m 8 (from 16) and
-- ef_construction 16 (from 64). Inserting a chunk's halfvec(2000) into the
-- default graph cost about 1-3 ms on 2 cores, most of ingestion's write time
-- on PostgreSQL (BENCHMARKS.md, issue 4); this graph costs less than half.
-- Searches read it as before (ef_search 200, iterative scans): on the SQuAD
-- set with the planner forced onto the index, the top 5 of a document's
-- chunks were 99.7 % the exact top 5 (99.85 % with the default graph) and the
-- top 1 99.96 % (100 %). Searches of a tenant of that size take the exact
-- scan through chunks_document_id_position_idx anyway.
DROP INDEX chunks_embedding_idx;
CREATE INDEX chunks_embedding_idx ON chunks USING hnsw (embedding halfvec_cosine_ops) WITH (m = 8, ef_construction = 16);
