/**
 * Test helpers that read MariaDB without this project's code: scratch databases, the `mysql` and `mysqldump` CLIs,
 * and an md5 of each table's sorted row texts, computed by the server itself.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { serviceUrls } from '@koan/data/testing';
import { type Connection, createConnection } from 'mysql2/promise';

export async function admin<T>(fn: (conn: Connection) => Promise<T>, database?: string): Promise<T> {
  const conn = await createConnection({
    uri: serviceUrls.mysql,
    ...(database ? { database } : {}),
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
  });
  try {
    await conn.query("SET SESSION time_zone = '+00:00', SESSION group_concat_max_len = 1073741824");
    return await fn(conn);
  } finally {
    await conn.end();
  }
}

/** Creates `koan_<label>_<random>`; `drop` removes it. */
export async function scratchDatabase(label: string): Promise<{ name: string; drop: () => Promise<void> }> {
  const name = `koan_${label}_${randomBytes(5).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`));
  return { name, drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS \`${name}\``)).then(() => undefined) };
}

function cliArgs(database: string): string[] {
  const url = new URL(serviceUrls.mysql);
  const args = [
    `-h${url.hostname}`,
    `-P${url.port || '3306'}`,
    `-u${decodeURIComponent(url.username || 'root')}`,
    '--default-character-set=utf8mb4',
  ];
  if (url.password) args.push(`-p${decodeURIComponent(url.password)}`);
  return [...args, database];
}

function run(command: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { maxBuffer: 1 << 26 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${command} failed: ${stderr || err.message}`)) : resolve(stdout),
    );
    child.stdin?.end(input ?? '');
  });
}

/** Runs a SQL script with the `mysql` CLI. */
export function mysqlScript(database: string, sql: string): Promise<string> {
  return run('mysql', cliArgs(database), sql);
}

/** `mysqldump --no-data` of a database: its DDL (tables, views, triggers), no rows. */
export function dumpSchema(database: string): Promise<string> {
  const [host, port, user, ...rest] = cliArgs(database);
  return run('mysqldump', [host!, port!, user!, '--no-data', '--skip-comments', ...rest]);
}

/** `SHOW CREATE TABLE` (or `SHOW CREATE VIEW`) of every table and view of a database, by name. */
export async function showCreate(database: string): Promise<Map<string, string>> {
  return admin(async (c) => {
    const [tables] = await c.query({
      sql: 'SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME',
      values: [database],
      rowsAsArray: true,
    });
    const out = new Map<string, string>();
    for (const [name, type] of tables as unknown as [string, string][]) {
      const [rows] = await c.query({
        sql: `SHOW CREATE ${type === 'VIEW' ? 'VIEW' : 'TABLE'} \`${name}\``,
        rowsAsArray: true,
      });
      out.set(name, String((rows as unknown as unknown[][])[0]![1]));
    }
    return out;
  }, database);
}

const HEXED =
  /^(binary|varbinary|tinyblob|blob|mediumblob|longblob|bit|geometry|point|linestring|polygon|multi\w+|geometrycollection)$/;

/**
 * Row count and an md5 of the table's rows as text, sorted, computed by the server: each column quoted (`QUOTE`),
 * binary, bit and spatial columns as hex, FLOAT as the double it holds (its text keeps 6 digits).
 */
export async function tableDigest(database: string, table: string): Promise<{ rows: number; md5: string | null }> {
  return admin(async (c) => {
    const [cols] = await c.query({
      sql: 'SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
      values: [database, table],
      rowsAsArray: true,
    });
    const exprs = (cols as unknown as [string, string][]).map(([name, type]) => {
      const c = `\`${name.replaceAll('`', '``')}\``;
      if (HEXED.test(type)) return `QUOTE(HEX(${c}))`;
      if (type === 'float') return `QUOTE(CAST(${c} AS DOUBLE))`;
      return `QUOTE(${c})`;
    });
    const row = `CONCAT_WS('|', ${exprs.join(', ')})`;
    const [rows] = await c.query({
      sql: `SELECT COUNT(*), MD5(GROUP_CONCAT(${row} ORDER BY ${row} SEPARATOR '\\n')) FROM \`${table.replaceAll('`', '``')}\``,
      rowsAsArray: true,
    });
    const [count, md5] = (rows as unknown as [string, string | null][])[0]!;
    return { rows: Number(count), md5 };
  }, database);
}

/** The base tables of a database. */
export async function baseTables(database: string): Promise<string[]> {
  return admin(async (c) => {
    const [rows] = await c.query({
      sql: "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
      values: [database],
      rowsAsArray: true,
    });
    return (rows as unknown as [string][]).map(([n]) => n);
  });
}
