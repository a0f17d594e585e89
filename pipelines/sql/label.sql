-- Every logged request with the feedback used for its response (label_feedback.sql judged it, in
-- `feedback_verdicts`), as outcome-table columns (split aside), and why it cannot become an outcome row
-- (`dropped`, NULL when it can).
-- Parameters: $task, $source; cost sources $provider, $config, $price_map → $recorded, $priced, $estimated;
-- drop reasons $failed, $served_by_fallback, $no_prompt_text, $no_feedback, $invalid_score; the verdict $used.
-- A request a failover fallback answered says nothing about the chosen model (the router's action), and
-- its propensity is not the fallback's: it is not an outcome of either.
WITH used AS (
    SELECT response_id, score
    FROM feedback_verdicts
    WHERE verdict = $used
)
SELECT
    r.prompt_hash AS prompt_id,
    r.prompt_text AS prompt,
    $task AS task,
    r.chosen_model AS model,
    l.score AS quality,
    r.cost_usd,
    CASE
        WHEN r.cost_source = $provider THEN $recorded
        WHEN r.cost_source IN ($config, $price_map) THEN $priced
        ELSE $estimated
    END AS cost_source,
    r.input_tokens,
    r.output_tokens,
    r.latency_ms,
    NULL::VARCHAR AS response,
    $source AS source,
    r.propensity,
    r.router_version,
    r.started_at AS observed_at,
    CASE
        WHEN r.status IS DISTINCT FROM 200 OR r.chosen_model IS NULL OR r.prompt_hash IS NULL THEN $failed
        WHEN r.served_model IS NOT NULL AND r.served_model IS DISTINCT FROM r.chosen_model THEN $served_by_fallback
        WHEN r.prompt_text IS NULL THEN $no_prompt_text
        WHEN l.response_id IS NULL THEN $no_feedback
        WHEN l.score IS NULL OR NOT l.score BETWEEN 0 AND 1 THEN $invalid_score
    END AS dropped
FROM requests AS r
LEFT JOIN used AS l ON l.response_id = r.response_id
ORDER BY r.started_at, r.span_id;
