// Reads every exported file back with DuckDB (hive_partitioning on), checks
// what a lake reader sees, and writes the rows as CSV for a column-by-column
// comparison with the source table in PostgreSQL.
//
// usage: node readback.mjs <export_dir> <out.csv> [json|json.gz]
// Prints one JSON object of findings; exits 1 when a check fails.
import { DuckDBInstance } from '@duckdb/node-api';

const [exportDir, csvPath, extension = 'json'] = process.argv.slice(2);
if (!exportDir || !csvPath) {
  console.error('usage: node readback.mjs <export_dir> <out.csv>');
  process.exit(2);
}

const quote = (text) => `'${text.replaceAll("'", "''")}'`;
const source = `read_json(${quote(`${exportDir}/exports/*/interaction_history/*/*/*/*.${extension}`)},
  format = 'newline_delimited', hive_partitioning = true, filename = true,
  columns = {id: 'BIGINT', tenant_id: 'VARCHAR', created_at: 'VARCHAR', contact_id: 'VARCHAR',
             channel: 'VARCHAR', direction: 'VARCHAR', event_type: 'VARCHAR', score: 'DOUBLE',
             metadata: 'JSON'})`;

const instance = await DuckDBInstance.create(':memory:');
const connection = await instance.connect();
const one = async (sql) => (await connection.runAndReadAll(sql)).getRowObjectsJson()[0];

const findings = await one(`
  SELECT count(*) AS rows,
         count(DISTINCT id) AS distinct_ids,
         count(DISTINCT filename) AS files,
         count(*) FILTER (WHERE year <> substr(created_at, 1, 4)::INT
                             OR month <> substr(created_at, 6, 2)::INT
                             OR day <> substr(created_at, 9, 2)::INT) AS rows_in_wrong_partition,
         count(*) FILTER (WHERE url_decode(regexp_extract(filename, '/exports/([^/]+)/interaction_history/', 1))
                             <> tenant_id) AS rows_in_wrong_tenant_directory,
         count(*) FILTER (WHERE NOT ends_with(created_at, 'Z')) AS timestamps_without_z
  FROM ${source}`);

await connection.run(`COPY (
    SELECT id, tenant_id, created_at, contact_id, channel, direction, event_type, score, metadata
    FROM ${source} ORDER BY id)
  TO ${quote(csvPath)} (FORMAT csv, HEADER true)`);

console.log(JSON.stringify(findings));
const failed = Number(findings.rows) !== Number(findings.distinct_ids)
  || Number(findings.rows_in_wrong_partition) !== 0
  || Number(findings.rows_in_wrong_tenant_directory) !== 0
  || Number(findings.timestamps_without_z) !== 0;
process.exit(failed ? 1 : 0);
