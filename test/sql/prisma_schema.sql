-- A platform schema as Prisma writes it, not designed for interactions_cron:
-- quoted camelCase columns, cuid-like text ids, enum statuses, soft deletes,
-- and DateTime as timestamp(3) without time zone holding UTC wall-clock time.
CREATE SCHEMA app;
CREATE TYPE app."TenantStatus" AS ENUM ('ACTIVE', 'SUSPENDED');
CREATE TYPE app."PeriodType" AS ENUM ('DAILY', 'WEEKLY', 'MONTHLY');
CREATE TABLE app."Tenant" (
    id            text PRIMARY KEY,
    "displayName" text NOT NULL,
    status        app."TenantStatus" NOT NULL DEFAULT 'ACTIVE',
    "createdAt"   timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deletedAt"   timestamp(3)
);
CREATE TABLE app."Interaction" (
    id          text PRIMARY KEY,
    "tenantId"  text NOT NULL REFERENCES app."Tenant" (id),
    channel     text NOT NULL,
    payload     jsonb,
    "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX "Interaction_tenantId_createdAt_id_idx" ON app."Interaction" ("tenantId", "createdAt", id);
CREATE TABLE app."Suppression" (
    id          text PRIMARY KEY,
    "tenantId"  text NOT NULL,
    "contactId" text NOT NULL,
    "expiresAt" timestamp(3)
);
CREATE INDEX "Suppression_expiresAt_idx" ON app."Suppression" ("expiresAt");
CREATE TABLE app."DailySummary" (
    id            text PRIMARY KEY,
    "tenantId"    text NOT NULL,
    "periodType"  app."PeriodType" NOT NULL,
    "periodStart" timestamp(3) NOT NULL,
    interactions  integer NOT NULL DEFAULT 0
);
CREATE INDEX "DailySummary_periodStart_idx" ON app."DailySummary" ("periodStart");
