-- The table exactly as the Java DTC library (lfeagan/distributed-task-manager) created it, so that an
-- existing Java table is recognised as version 1 and upgraded in place by the migrations after this.
CREATE TABLE IF NOT EXISTS {table} (
    name            varchar(32)  NOT NULL,
    bucket_time     timestamptz  NOT NULL,
    bucket_interval interval     NOT NULL,
    status          varchar(16)  NOT NULL,
    created_by      varchar(32)  NOT NULL,
    created_at      timestamptz  NOT NULL,
    acquired_by     varchar(32),
    acquired_at     timestamptz,
    completed_at    timestamptz,
    fail_count      int DEFAULT 0,
    message         text,
    PRIMARY KEY (name, bucket_time)
);
