-- Lines (or spans in them) that could not be read, kept so they can be inspected and fixed at the source.
INSERT OR IGNORE INTO malformed_lines BY NAME SELECT * FROM malformed_batch;
