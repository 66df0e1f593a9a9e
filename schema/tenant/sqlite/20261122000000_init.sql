-- One tenant's content: the original PDFs, their page texts, chunks with
-- embeddings and full text, and chat history. Nothing here is shared.

-- The embedding model and dimensions this database was built with.
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- The original bytes of each document (document_id is the control plane's
-- public id).
CREATE TABLE files (
  document_id TEXT PRIMARY KEY,
  content BLOB NOT NULL,
  sha256 TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE pages (
  document_id TEXT NOT NULL,
  page INTEGER NOT NULL,
  text TEXT NOT NULL,
  PRIMARY KEY (document_id, page)
);

-- embedding: little-endian float32s, searched by an exact scan.
CREATE TABLE chunks (
  id INTEGER PRIMARY KEY,
  document_id TEXT NOT NULL,
  page INTEGER NOT NULL,
  page_end INTEGER NOT NULL,
  position INTEGER NOT NULL,
  text TEXT NOT NULL,
  embedding BLOB
);
CREATE INDEX chunks_document_id_position_idx ON chunks (document_id, position);

-- Full text of the chunks (bm25), kept in step by triggers.
CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks', content_rowid='id', tokenize='porter unicode61');
CREATE TABLE conversations (
  id TEXT PRIMARY KEY,
  document_id TEXT NOT NULL,
  title TEXT NOT NULL DEFAULT '',
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX conversations_document_id_idx ON conversations (document_id, created_at);

CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  role TEXT NOT NULL,
  content TEXT NOT NULL,
  citations TEXT NOT NULL DEFAULT '[]',
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX messages_conversation_id_idx ON messages (conversation_id, id);
