-- The warehouse the `ingest` stage fills from the gateway's span files; safe to run on every start.
-- Primary keys make re-ingestion idempotent; `ingested_files` makes it incremental.

CREATE TABLE IF NOT EXISTS requests (
    span_id           VARCHAR PRIMARY KEY,
    trace_id          VARCHAR NOT NULL,
    response_id       VARCHAR,
    started_at        TIMESTAMPTZ NOT NULL,
    ended_at          TIMESTAMPTZ NOT NULL,
    latency_ms        DOUBLE,
    request_model     VARCHAR,
    chosen_model      VARCHAR,
    served_model      VARCHAR,       -- set when a failover fallback answered instead of chosen_model
    decision          VARCHAR,
    propensity        DOUBLE,
    cost_weight       DOUBLE,
    cost_usd          DOUBLE,
    cost_source       VARCHAR,
    input_tokens      BIGINT,
    output_tokens     BIGINT,
    prompt_hash       VARCHAR,
    prompt_text       VARCHAR,
    router_version    VARCHAR,
    router_family     VARCHAR,
    arm               VARCHAR,
    status            INTEGER,       -- HTTP status the client got
    error_type        VARCHAR,
    stream            BOOLEAN,
    candidates        VARCHAR[],
    predicted_quality DOUBLE[],      -- aligned with candidates
    predicted_cost    DOUBLE[],      -- aligned with candidates
    key_id            VARCHAR,       -- who called: a virtual key id, `master` or `anonymous` (null before it was recorded)
    cascade_outcome   VARCHAR,       -- cascade mode: kept, escalated, escalation_failed, skipped_stream
    cascade_score     DOUBLE,        -- cascade mode: the verifier's P(first answer right)
    cascade_first_model         VARCHAR,  -- an escalated cascade's first answer: its model, id, cost, tokens
    cascade_first_response_id   VARCHAR,
    cascade_first_cost_usd      DOUBLE,
    cascade_first_input_tokens  BIGINT,
    cascade_first_output_tokens BIGINT,
    file              VARCHAR NOT NULL,
    line              BIGINT NOT NULL
);

-- Warehouses made before a column existed gain it (empty for the requests already stored).
ALTER TABLE requests ADD COLUMN IF NOT EXISTS served_model VARCHAR;
ALTER TABLE requests ADD COLUMN IF NOT EXISTS key_id VARCHAR;
ALTER TABLE requests ADD COLUMN IF NOT EXISTS cascade_outcome VARCHAR;
ALTER TABLE requests ADD COLUMN IF NOT EXISTS cascade_score DOUBLE;
ALTER TABLE requests ADD COLUMN IF NOT EXISTS cascade_first_model VARCHAR;
ALTER TABLE requests ADD COLUMN IF NOT EXISTS cascade_first_response_id VARCHAR;
ALTER TABLE requests ADD COLUMN IF NOT EXISTS cascade_first_cost_usd DOUBLE;
ALTER TABLE requests ADD COLUMN IF NOT EXISTS cascade_first_input_tokens BIGINT;
ALTER TABLE requests ADD COLUMN IF NOT EXISTS cascade_first_output_tokens BIGINT;

CREATE TABLE IF NOT EXISTS feedback (
    span_id          VARCHAR PRIMARY KEY,
    trace_id         VARCHAR NOT NULL,
    response_id      VARCHAR,
    score            DOUBLE,
    source           VARCHAR,
    known            BOOLEAN,        -- the gateway still remembered the response when the feedback came
    scored_at        TIMESTAMPTZ NOT NULL,  -- when the feedback was posted
    request_span_id  VARCHAR,        -- the span the feedback span links to, when it has a link
    key_id           VARCHAR,        -- who rated: a virtual key id, `master` or `anonymous` (null before it was recorded)
    rater_role       VARCHAR,        -- the rater's role: admin, operator or user (null when anonymous or not recorded)
    file             VARCHAR NOT NULL,
    line             BIGINT NOT NULL
);

ALTER TABLE feedback ADD COLUMN IF NOT EXISTS key_id VARCHAR;
ALTER TABLE feedback ADD COLUMN IF NOT EXISTS rater_role VARCHAR;

CREATE TABLE IF NOT EXISTS ingested_files (
    path        VARCHAR PRIMARY KEY,   -- absolute path of the span file
    bytes_read  BIGINT NOT NULL,       -- the next run reads on from this offset
    lines_read  BIGINT NOT NULL,       -- complete lines before that offset, so line numbers continue
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS malformed_lines (
    file      VARCHAR NOT NULL,
    line      BIGINT NOT NULL,
    reason    VARCHAR NOT NULL,
    found_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (file, line, reason)
);
