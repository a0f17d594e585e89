-- Checkpoint (fold the write-ahead log into the database file) every 256 MB of log instead of DuckDB's 16 MB:
-- each checkpoint rewrites the primary-key indexes, so with the default a large ingest spends most of its time
-- checkpointing after every chunk. Commits stay durable (the log is synced); the last checkpoint runs on close.
SET checkpoint_threshold = '256MB';
