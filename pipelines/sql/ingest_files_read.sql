-- Every span file read so far and how far.
SELECT path, bytes_read, lines_read FROM ingested_files;
