-- One batch of feedback spans; a span already stored (or repeated in the batch) is skipped.
INSERT OR IGNORE INTO feedback BY NAME SELECT * FROM feedback_batch;
