-- Reference schema of the platform tables interactions_cron works on.
-- The demo, the tests and the benchmark load it; an existing database only
-- has to meet the data contract in the README.

CREATE TABLE IF NOT EXISTS public.tenants (
    id      text PRIMARY KEY,
    name    text NOT NULL,
    status  text NOT NULL DEFAULT 'active'
);

CREATE SEQUENCE IF NOT EXISTS public.interaction_history_id_seq AS bigint;

CREATE TABLE IF NOT EXISTS public.interaction_history (
    id           bigint NOT NULL DEFAULT nextval('public.interaction_history_id_seq'),
    tenant_id    text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    contact_id   text,
    channel      text,
    direction    text,
    event_type   text,
    score        double precision,
    metadata     jsonb,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE INDEX IF NOT EXISTS interaction_history_export_idx
    ON public.interaction_history (tenant_id, created_at, id);

CREATE TABLE IF NOT EXISTS public.interaction_history_default
    PARTITION OF public.interaction_history DEFAULT;

-- Monthly partitions (UTC month starts) from last month to three months ahead.
DO $$
DECLARE
    month_start timestamptz;
BEGIN
    FOR i IN -1..3 LOOP
        month_start := (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i)) AT TIME ZONE 'UTC';
        IF to_regclass(format('public.interaction_history_p%s', to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM'))) IS NULL THEN
            EXECUTE format('CREATE TABLE public.%I PARTITION OF public.interaction_history FOR VALUES FROM (%L) TO (%L)',
                           'interaction_history_p' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM'),
                           month_start,
                           (month_start AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC');
        END IF;
    END LOOP;
END
$$;
