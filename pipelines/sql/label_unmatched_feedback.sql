-- Feedback whose response is in no ingested request (its request is in a file not ingested yet, or was lost).
SELECT count(*)
FROM feedback AS f
WHERE NOT EXISTS (SELECT 1 FROM requests AS r WHERE r.response_id = f.response_id);
