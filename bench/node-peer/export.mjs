#!/usr/bin/env node
// Benchmark peer of interactions_cron.export_interactions(): the same job
// written the straightforward way in Node.js with node-postgres (npm pg).
//
// For each active tenant: read its rows after its checkpoint (keyset on
// (created_at, id)) and before the watermark, ordered by (created_at, id),
// at most --batch-size of them; write them as NDJSON (JSON.stringify of the
// row object pg returns) into the same Hive layout, one file per UTC day,
// each written to a hidden temporary file, fsynced and renamed into place;
// then move the tenant's checkpoint in a table of the peer's own
// (node_peer.checkpoints).  Tenants are shared out over --connections
// connections, as the extension shares them out over its workers.
//
// Connection settings come from the usual PG* environment variables.
//
//   node export.mjs --dir DIR [--batch-size 10000] [--connections 2]
//
// Prints one JSON summary line: {"ok","totalExported","watermark",
// "connections","tenants","files"}.  Exits 1 if any tenant failed.

import { mkdir, open, rename } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';

const { values: args } = parseArgs({
    options: {
        dir: { type: 'string' },
        'batch-size': { type: 'string', default: '10000' },
        connections: { type: 'string', default: '2' },
        'tenants-table': { type: 'string', default: 'public.tenants' },
        'history-table': { type: 'string', default: 'public.interaction_history' },
    },
});
if (!args.dir) {
    console.error('usage: node export.mjs --dir DIR [--batch-size N] [--connections N]');
    process.exit(2);
}
const batchSize = Number.parseInt(args['batch-size'], 10);
const connections = Number.parseInt(args.connections, 10);
if (!(batchSize >= 1) || !(connections >= 1)) {
    console.error('--batch-size and --connections must be at least 1');
    process.exit(2);
}
const exportRoot = path.resolve(args.dir);

// timestamptz: pg would make a JS Date, which keeps milliseconds only; the
// keyset checkpoint needs the exact value.  Sessions run with TimeZone UTC,
// so the text is "YYYY-MM-DD HH:MM:SS[.ffffff]+00"; keep it as ISO 8601.
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, (text) =>
    text.endsWith('+00') ? `${text.slice(0, 10)}T${text.slice(11, -3)}Z` : text);

async function connect() {
    const client = new pg.Client();
    await client.connect();
    await client.query("SET TimeZone = 'UTC'");
    return client;
}

// Hive escaping of the tenant id, as the extension does it: one path segment.
const HIVE_SPECIAL = new Set(['"', '#', '%', "'", '*', '/', ':', '=', '?', '\\', '{', '[', ']', '^']);
function escapeTenant(id) {
    if (id === '.' || id === '..') return id.replaceAll('.', '%2E');
    let out = '';
    for (const ch of id) {
        const code = ch.codePointAt(0);
        if (code < 0x20 || code === 0x7f || HIVE_SPECIAL.has(ch)) {
            out += `%${code.toString(16).toUpperCase().padStart(2, '0')}`;
        } else {
            out += ch;
        }
    }
    if (out.startsWith('_') || out.startsWith('.')) out = `%${out.codePointAt(0).toString(16).toUpperCase()}${out.slice(1)}`;
    if (out.length === 0 || Buffer.byteLength(out) > 255) throw new Error(`unusable tenant id ${JSON.stringify(id)}`);
    return out;
}

// "2026-03-30T02:00:00.5Z" -> "2026-03-30T02-00-00-500000Z"
function fileTimestamp(iso) {
    const [whole, fraction = ''] = iso.slice(0, -1).split('.');
    return `${whole.replaceAll(':', '-')}-${fraction.padEnd(6, '0')}Z`;
}

async function fsyncPath(p) {
    const handle = await open(p, 'r');
    try {
        await handle.sync();
    } finally {
        await handle.close();
    }
}

// Writes one day's rows durably: hidden temporary file, fsync, rename, fsync
// of the directory.  Returns the path relative to the export root.
async function writeDayFile(tenantDir, rows) {
    const first = rows[0];
    const day = first.created_at.slice(0, 10);
    const relDir = path.join('exports', tenantDir, 'interaction_history',
        `year=${day.slice(0, 4)}`, `month=${day.slice(5, 7)}`, `day=${day.slice(8, 10)}`);
    const name = `batch-${fileTimestamp(first.created_at)}-${first.id}.json`;
    const dir = path.join(exportRoot, relDir);
    await mkdir(dir, { recursive: true });
    const temporary = path.join(dir, `.${name}.tmp`);
    const handle = await open(temporary, 'w');
    try {
        let chunk = '';
        for (const row of rows) {
            chunk += JSON.stringify(row) + '\n';
            if (chunk.length >= 1 << 20) {
                await handle.write(chunk);
                chunk = '';
            }
        }
        if (chunk.length > 0) await handle.write(chunk);
        await handle.sync();
    } finally {
        await handle.close();
    }
    await rename(temporary, path.join(dir, name));
    await fsyncPath(dir);
    return path.join(relDir, name);
}

const history = args['history-table'];
const batchAfter = `SELECT * FROM ${history}
    WHERE tenant_id = $1 AND (created_at, id) > ($2::timestamptz, $3::bigint) AND created_at < $4
    ORDER BY created_at, id LIMIT $5`;
const batchFromStart = `SELECT * FROM ${history}
    WHERE tenant_id = $1 AND created_at < $2
    ORDER BY created_at, id LIMIT $3`;

async function exportTenant(client, tenant, watermark) {
    const result = { tenantId: tenant.id, tenantName: tenant.name, exported: 0, files: [] };
    const { rows } = tenant.last_created_at === null
        ? await client.query(batchFromStart, [tenant.id, watermark, batchSize])
        : await client.query(batchAfter, [tenant.id, tenant.last_created_at, tenant.last_id, watermark, batchSize]);
    if (rows.length === 0) return result;
    const tenantDir = escapeTenant(tenant.id);
    let start = 0;
    for (let i = 1; i <= rows.length; i++) {
        if (i === rows.length || rows[i].created_at.slice(0, 10) !== rows[start].created_at.slice(0, 10)) {
            result.files.push(await writeDayFile(tenantDir, rows.slice(start, i)));
            start = i;
        }
    }
    const last = rows[rows.length - 1];
    await client.query(
        `INSERT INTO node_peer.checkpoints (tenant_id, last_created_at, last_id) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE
         SET last_created_at = excluded.last_created_at, last_id = excluded.last_id, updated_at = now()`,
        [tenant.id, last.created_at, last.id]);
    result.exported = rows.length;
    result.filePath = result.files[0];
    if (rows.length === batchSize) result.batchFull = true;
    return result;
}

async function main() {
    const first = await connect();
    await first.query(`CREATE SCHEMA IF NOT EXISTS node_peer;
        CREATE TABLE IF NOT EXISTS node_peer.checkpoints (
            tenant_id text PRIMARY KEY,
            last_created_at timestamptz NOT NULL,
            last_id bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now())`);
    // Rows older than every running transaction's start and a second behind
    // now: a row that commits later than this query cannot be older.
    const { rows: [{ watermark }] } = await first.query(
        `SELECT least(now() - interval '1 second',
                      (SELECT min(xact_start) FROM pg_stat_activity
                       WHERE pid <> pg_backend_pid() AND backend_type = 'client backend')) AS watermark`);
    const { rows: tenants } = await first.query(
        `SELECT t.id, t.name, c.last_created_at, c.last_id
         FROM ${args['tenants-table']} t LEFT JOIN node_peer.checkpoints c ON c.tenant_id = t.id
         WHERE t.status = 'active' ORDER BY t.id`);

    const clients = [first];
    while (clients.length < Math.min(connections, Math.max(tenants.length, 1))) clients.push(await connect());
    const results = new Array(tenants.length);
    let next = 0;
    await Promise.all(clients.map(async (client) => {
        while (next < tenants.length) {
            const index = next++;
            try {
                results[index] = await exportTenant(client, tenants[index], watermark);
            } catch (error) {
                results[index] = { tenantId: tenants[index].id, exported: 0, files: [], error: error.message };
            }
        }
    }));
    await Promise.all(clients.map((client) => client.end()));

    const summary = {
        ok: results.every((r) => !r.error),
        totalExported: results.reduce((sum, r) => sum + r.exported, 0),
        watermark,
        connections: clients.length,
        tenants: results.length,
        files: results.reduce((sum, r) => sum + r.files.length, 0),
    };
    const failed = results.filter((r) => r.error);
    if (failed.length > 0) summary.errors = failed.slice(0, 5).map((r) => `${r.tenantId}: ${r.error}`);
    console.log(JSON.stringify(summary));
    if (!summary.ok) process.exitCode = 1;
}

main().catch((error) => {
    console.error(error.stack || String(error));
    process.exit(1);
});
