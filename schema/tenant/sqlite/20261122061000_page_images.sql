-- Page images for the chat page: a PNG of a page, rendered by the PDF reader
-- child at a capped size the first time it is asked for, so each page is
-- rendered once. They go with the document's file.
CREATE TABLE page_images (
  document_id TEXT NOT NULL REFERENCES files (document_id) ON DELETE CASCADE,
  page INTEGER NOT NULL,
  png BLOB NOT NULL,
  PRIMARY KEY (document_id, page)
);
