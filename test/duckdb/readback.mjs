// Reads every exported file back with DuckDB (hive_partitioning on), checks
// what a lake reader sees, and writes the rows as CSV for a column-by-column
// comparison with the source table in PostgreSQL.
//
// usage: node readback.mjs <export_dir> <out.csv> [json|json.gz|json.zst] [reference|prisma]
// Prints one JSON object of findings; exits 1 when a check fails.
import { DuckDBInstance } from '@duckdb/node-api';

const [exportDir, csvPath, extension = 'json', schema = 'reference'] = process.argv.slice(2);
if (!exportDir || !csvPath) {
  console.error('usage: node readback.mjs <export_dir> <out.csv> [json|json.gz|json.zst] [reference|prisma]');
  process.exit(2);
}

// The history table's columns as each schema names them (the NDJSON keys).
const schemas = {
  reference: {
    columns: `{id: 'BIGINT', tenant_id: 'VARCHAR', created_at: 'VARCHAR', contact_id: 'VARCHAR',
               channel: 'VARCHAR', direction: 'VARCHAR', event_type: 'VARCHAR', score: 'DOUBLE',
               metadata: 'JSON'}`,
    select: 'id, tenant_id, created_at, contact_id, channel, direction, event_type, score, metadata',
    tenant: 'tenant_id',
    created: 'created_at',
  },
  prisma: {
    columns: `{id: 'VARCHAR', tenantId: 'VARCHAR', channel: 'VARCHAR', payload: 'JSON',
               createdAt: 'VARCHAR', updatedAt: 'VARCHAR'}`,
    select: 'id, "tenantId", channel, payload, "createdAt", "updatedAt"',
    tenant: '"tenantId"',
    created: '"createdAt"',
  },
};
const { columns, select, tenant, created } = schemas[schema];

const quote = (text) => `'${text.replaceAll("'", "''")}'`;
const source = `read_json(${quote(`${exportDir}/exports/*/interaction_history/*/*/*/*.${extension}`)},
  format = 'newline_delimited', hive_partitioning = true, filename = true, columns = ${columns})`;

const instance = await DuckDBInstance.create(':memory:');
const connection = await instance.connect();
const one = async (sql) => (await connection.runAndReadAll(sql)).getRowObjectsJson()[0];

const findings = await one(`
  SELECT count(*) AS rows,
         count(DISTINCT id) AS distinct_ids,
         count(DISTINCT filename) AS files,
         count(*) FILTER (WHERE year <> substr(${created}, 1, 4)::INT
                             OR month <> substr(${created}, 6, 2)::INT
                             OR day <> substr(${created}, 9, 2)::INT) AS rows_in_wrong_partition,
         count(*) FILTER (WHERE url_decode(regexp_extract(filename, '/exports/([^/]+)/interaction_history/', 1))
                             <> ${tenant}) AS rows_in_wrong_tenant_directory,
         count(*) FILTER (WHERE NOT ends_with(${created}, 'Z')) AS timestamps_without_z
  FROM ${source}`);

await connection.run(`COPY (
    SELECT ${select}
    FROM ${source} ORDER BY id)
  TO ${quote(csvPath)} (FORMAT csv, HEADER true)`);

console.log(JSON.stringify(findings));
const failed = Number(findings.rows) !== Number(findings.distinct_ids)
  || Number(findings.rows_in_wrong_partition) !== 0
  || Number(findings.rows_in_wrong_tenant_directory) !== 0
  || Number(findings.timestamps_without_z) !== 0;
process.exit(failed ? 1 : 0);
