-- The spool shared by the gateways: source ids (dedupe), documents stored
-- once per record, small job rows, page states apart, attempts, quarantine.

CREATE TABLE sources (
    connector text NOT NULL,
    source_id text NOT NULL,
    accepted  timestamptz NOT NULL DEFAULT now(),
    jobs      text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (connector, source_id)
);
CREATE INDEX sources_accepted ON sources (accepted);

CREATE TABLE documents (
    record_id  text NOT NULL,
    idx        int NOT NULL,
    name       text NOT NULL,
    media_type text NOT NULL,
    data       bytea NOT NULL,
    PRIMARY KEY (record_id, idx)
);

CREATE TABLE jobs (
    id           text PRIMARY KEY,
    driver       text NOT NULL,
    record_id    text NOT NULL,
    job          bytea NOT NULL, -- the job as JSON: its record, documents without their bytes
    attempt      int NOT NULL DEFAULT 0,
    accepted     timestamptz NOT NULL,
    due          timestamptz NOT NULL,
    last_error   text NOT NULL DEFAULT '',
    category     text NOT NULL DEFAULT '',
    state        text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'failed')),
    retrying     boolean NOT NULL DEFAULT false,
    finished     timestamptz,
    lease_holder text,
    lease_until  timestamptz
);
CREATE INDEX jobs_queue ON jobs (driver, due) WHERE state = 'queued';
CREATE INDEX jobs_failed ON jobs (finished) WHERE state = 'failed';
CREATE INDEX jobs_record ON jobs (record_id);

CREATE TABLE job_state (
    job_id text PRIMARY KEY,
    state  bytea NOT NULL
);

CREATE TABLE history (
    job_id  text NOT NULL,
    seq     bigserial,
    attempt bytea NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE quarantine (
    id     bigserial PRIMARY KEY,
    bucket text NOT NULL,
    key    text NOT NULL,
    error  text NOT NULL,
    at     timestamptz NOT NULL DEFAULT now(),
    data   bytea
);
