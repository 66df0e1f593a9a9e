-- Chat answers are saved as they stream: an assistant message starts
-- pending, then ends done, stopped (by the person) or failed (with the
-- reason, keeping what was streamed). answerer names what wrote it;
-- started_at is when it was last claimed for writing.
ALTER TABLE messages ADD COLUMN status TEXT NOT NULL DEFAULT 'done';
ALTER TABLE messages ADD COLUMN error TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN answerer TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN started_at TIMESTAMP NOT NULL DEFAULT '1970-01-01 00:00:00';
ALTER TABLE conversations ADD COLUMN updated_at TIMESTAMP NOT NULL DEFAULT '1970-01-01 00:00:00';
CREATE INDEX conversations_document_id_updated_idx ON conversations (document_id, updated_at);
