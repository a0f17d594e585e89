-- Every logged request with the feedback used for its response (label_feedback.sql judged it, in
-- `feedback_verdicts`), as outcome-table columns (split aside), and why it cannot become an outcome row
-- (`dropped`, NULL when it can).
-- Parameters: $task, $source; cost sources $provider, $config, $price_map → $recorded, $priced, $estimated;
-- drop reasons $failed, $served_by_fallback, $no_prompt_text, $no_feedback, $invalid_score; the verdict $used.
-- A request a failover fallback answered says nothing about the chosen model (the router's action), and
-- its propensity is not the fallback's: it is not an outcome of either.
-- An escalated cascade request yields two answers, each its own row: the served one (the strong model's, its own
-- cost) and the first one (the cascade_first_* columns), labelled by the feedback on its own response id.
WITH used AS (
    SELECT response_id, score
    FROM feedback_verdicts
    WHERE verdict = $used
),
answers AS (
    SELECT
        r.*,
        false AS is_first,
        r.response_id AS answer_id,
        r.chosen_model AS answer_model,
        r.cost_usd AS answer_cost_usd,
        r.input_tokens AS answer_input_tokens,
        r.output_tokens AS answer_output_tokens
    FROM requests AS r
    UNION ALL
    SELECT
        r.*,
        true,
        r.cascade_first_response_id,
        r.cascade_first_model,
        r.cascade_first_cost_usd,
        r.cascade_first_input_tokens,
        r.cascade_first_output_tokens
    FROM requests AS r
    WHERE r.cascade_first_response_id IS NOT NULL
)
SELECT
    r.prompt_hash AS prompt_id,
    r.prompt_text AS prompt,
    $task AS task,
    r.answer_model AS model,
    l.score AS quality,
    r.answer_cost_usd AS cost_usd,
    CASE
        WHEN r.cost_source = $provider THEN $recorded
        WHEN r.cost_source IN ($config, $price_map) THEN $priced
        ELSE $estimated
    END AS cost_source,
    r.answer_input_tokens AS input_tokens,
    r.answer_output_tokens AS output_tokens,
    r.latency_ms,
    NULL::VARCHAR AS response,
    $source AS source,
    r.propensity,
    r.router_version,
    r.started_at AS observed_at,
    CASE
        WHEN r.status IS DISTINCT FROM 200 OR r.answer_model IS NULL OR r.prompt_hash IS NULL THEN $failed
        WHEN NOT r.is_first AND r.served_model IS NOT NULL AND r.served_model IS DISTINCT FROM r.chosen_model
            THEN $served_by_fallback
        WHEN r.prompt_text IS NULL THEN $no_prompt_text
        WHEN l.response_id IS NULL THEN $no_feedback
        WHEN l.score IS NULL OR NOT l.score BETWEEN 0 AND 1 THEN $invalid_score
    END AS dropped
FROM answers AS r
LEFT JOIN used AS l ON l.response_id = r.answer_id
ORDER BY r.started_at, r.span_id, r.is_first;
