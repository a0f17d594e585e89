-- One batch of request spans; a span already stored (or repeated in the batch) is skipped.
INSERT OR IGNORE INTO requests BY NAME SELECT * FROM request_batch;
