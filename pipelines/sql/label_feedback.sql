-- The verdict on every feedback span, kept for this connection as `feedback_verdicts`: label.sql uses the
-- feedback judged $used, label_feedback_counts.sql counts the rest.
-- Parameters: $raters, the roles that may rate responses other callers received (loop.feedback_raters);
-- verdicts $used, $repeated, $not_owner, $unmatched.
-- A response's owner is the key of the first request answered with its id (an escalated cascade's first answer
-- included). Feedback counts when it comes from that key or from a rater role (anything else is $not_owner); of
-- the feedback that counts, the first by time is $used and the rest are $repeated. Spans from before key ids were recorded (no key id on the feedback, or on its
-- request) cannot be checked, so they count; among feedback without a key id the latest is used, as it was
-- before, and feedback naming its rater comes before any without.
CREATE OR REPLACE TEMP TABLE feedback_verdicts AS
WITH answered AS (
    SELECT response_id, key_id, started_at, span_id FROM requests WHERE response_id IS NOT NULL
    UNION ALL
    SELECT cascade_first_response_id, key_id, started_at, span_id FROM requests
    WHERE cascade_first_response_id IS NOT NULL
),
owners AS (
    SELECT response_id, key_id
    FROM answered
    QUALIFY row_number() OVER (PARTITION BY response_id ORDER BY started_at, span_id) = 1
),
checked AS (
    SELECT
        f.span_id,
        f.response_id,
        f.score,
        f.scored_at,
        f.key_id,
        o.response_id IS NOT NULL AS matched,
        f.key_id IS NOT NULL AND o.key_id IS NOT NULL AND f.key_id <> o.key_id
            AND NOT coalesce(list_contains($raters, f.rater_role), false) AS not_owner
    FROM feedback AS f
    LEFT JOIN owners AS o ON o.response_id = f.response_id
),
ranked AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY response_id, matched AND NOT not_owner
            ORDER BY
                key_id IS NULL,
                CASE WHEN key_id IS NOT NULL THEN scored_at END,
                CASE WHEN key_id IS NOT NULL THEN span_id END,
                scored_at DESC,
                span_id DESC
        ) AS rank
    FROM checked
)
SELECT
    span_id,
    response_id,
    score,
    CASE
        WHEN NOT matched THEN $unmatched
        WHEN not_owner THEN $not_owner
        WHEN rank = 1 THEN $used
        ELSE $repeated
    END AS verdict
FROM ranked;
