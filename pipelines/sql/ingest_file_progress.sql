-- How far a span file has been read: complete lines up to byte $bytes_read.
INSERT INTO ingested_files VALUES ($path, $bytes_read, $lines_read, current_timestamp)
ON CONFLICT (path) DO UPDATE SET
    bytes_read = excluded.bytes_read,
    lines_read = excluded.lines_read,
    updated_at = excluded.updated_at;
