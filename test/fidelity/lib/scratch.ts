/**
 * Scratch databases of the fidelity suite, made and read with native tools only: `psql`/`pg_dump`, the `mysql` client
 * and `mysqldump`, and the plain drivers (`pg`, `mysql2`, `better-sqlite3`) for SQL the suite writes itself. Every name
 * is random and every database is dropped by `dropAll()`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeService, serviceUrls } from '@koan/data/testing';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';

export type Provider = 'postgres' | 'mysql' | 'sqlite';
export const PROVIDER_LABEL: Readonly<Record<Provider, string>> = {
  postgres: 'PostgreSQL',
  mysql: 'MariaDB',
  sqlite: 'SQLite',
};

/** A row of text cells (the suite casts every column to text in SQL), or raw SQLite values. */
export type Cell = string | null;

export interface Scratch {
  readonly provider: Provider;
  /** Database name (PostgreSQL, MariaDB) or file path (SQLite). */
  readonly name: string;
  /** The URL the CLI is given (`--source`, `--target-source`). */
  readonly url: string;
  /** Runs a script with the provider's own client (psql, mysql, sqlite3). */
  script(sql: string): Promise<string>;
  /** Runs one query and returns its rows as arrays (PostgreSQL, MariaDB: every cell as text; SQLite: raw values). */
  query(sql: string, params?: readonly unknown[]): Promise<unknown[][]>;
  /** Runs one statement inside a transaction that is rolled back (it throws what the statement throws). */
  rolledBack(sql: string): Promise<void>;
  drop(): Promise<void>;
}

const made: Scratch[] = [];

function run(command: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { maxBuffer: 1 << 28 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${command} ${args.join(' ')} failed: ${stderr || err.message}`)) : resolve(stdout),
    );
    child.stdin?.end(input ?? '');
  });
}

function withDatabase(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

const scratchName = (label: string) => `koan_fid_${label.replace(/\W/g, '_')}_${randomBytes(4).toString('hex')}`;

/** Undefined when the server answers, else why the suite is skipped (with CI=true: throws). */
export async function probe(provider: Provider): Promise<string | undefined> {
  if (provider === 'sqlite') return undefined;
  if (provider === 'postgres')
    return probeService('postgres', async () => {
      const c = new pg.Client({ connectionString: serviceUrls.postgres, connectionTimeoutMillis: 3000 });
      await c.connect();
      await c.end();
    });
  return probeService('mysql', async () => {
    const c = await mysql.createConnection({ uri: serviceUrls.mysql, connectTimeout: 3000 });
    await c.end();
  });
}

/** Session settings of every native PostgreSQL read: the text forms the comparisons expect. */
const PG_SESSION =
  "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1";

/** One connection to a scratch database, opened on first use and kept until the database is dropped. */
interface Session {
  query(sql: string, params?: readonly unknown[]): Promise<unknown[][]>;
  close(): Promise<void>;
}

async function pgSession(url: string): Promise<Session> {
  const client = new pg.Client({
    connectionString: url,
    // Every value as the type's own output text, never a JavaScript number or Date.
    types: { getTypeParser: () => (text: string) => text } as never,
  });
  // A connection ended by DROP DATABASE ... WITH (FORCE) reports here; the next query would fail loudly anyway.
  client.on('error', () => undefined);
  await client.connect();
  await client.query(PG_SESSION);
  return {
    query: async (sql, params = []) =>
      ((await client.query({ text: sql, values: params as unknown[], rowMode: 'array' })).rows ?? []) as unknown[][],
    close: () => client.end().catch(() => undefined),
  };
}

async function mySession(url: string): Promise<Session> {
  const conn = await mysql.createConnection({
    uri: url,
    charset: 'utf8mb4',
    rowsAsArray: true,
    // Every cell as the server's text (the suite casts to text in SQL), never a JavaScript number or Date.
    typeCast: (field: { string(): string | null }) => field.string(),
  } as mysql.ConnectionOptions);
  conn.on('error', () => undefined);
  await conn.query("SET SESSION time_zone = '+00:00', SESSION group_concat_max_len = 1073741824");
  return {
    query: async (sql, params = []) => {
      const [rows] = await conn.query({ sql, values: params as unknown[] });
      return Array.isArray(rows) ? (rows as unknown[][]) : [];
    },
    close: () => conn.end().catch(() => undefined),
  };
}

/** Runs one statement on a fresh session of the server's default database (CREATE/DROP DATABASE). */
async function admin(open: (url: string) => Promise<Session>, url: string, sql: string): Promise<void> {
  const session = await open(url);
  try {
    await session.query(sql);
  } finally {
    await session.close();
  }
}

/** query/rolledBack/close of a database reached through one lazily opened session. */
function sessionMethods(open: () => Promise<Session>, begin: string) {
  let session: Promise<Session> | undefined;
  const get = () => {
    session ??= open();
    return session;
  };
  return {
    query: async (sql: string, params?: readonly unknown[]) => (await get()).query(sql, params),
    rolledBack: async (sql: string) => {
      const s = await get();
      await s.query(begin);
      try {
        await s.query(sql);
      } finally {
        await s.query('ROLLBACK');
      }
    },
    close: async () => {
      const s = session;
      session = undefined;
      if (s) await (await s).close();
    },
  };
}

export async function createPostgres(label: string): Promise<Scratch> {
  const name = scratchName(label);
  await admin(pgSession, serviceUrls.postgres, `CREATE DATABASE ${name}`);
  const url = withDatabase(serviceUrls.postgres, name);
  const session = sessionMethods(() => pgSession(url), 'BEGIN');
  const db: Scratch = {
    provider: 'postgres',
    name,
    url,
    script: (sql) => run('psql', ['-q', '-X', '-v', 'ON_ERROR_STOP=1', '-o', '/dev/null', '-d', url], sql),
    query: session.query,
    rolledBack: session.rolledBack,
    drop: async () => {
      await session.close();
      await admin(pgSession, serviceUrls.postgres, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
  made.push(db);
  return db;
}

function mysqlArgs(database: string): string[] {
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

export async function createMariadb(label: string): Promise<Scratch> {
  const name = scratchName(label);
  await admin(mySession, serviceUrls.mysql, `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  const url = withDatabase(serviceUrls.mysql, name);
  const session = sessionMethods(() => mySession(url), 'START TRANSACTION');
  const db: Scratch = {
    provider: 'mysql',
    name,
    url,
    script: (sql) => run('mysql', mysqlArgs(name), sql),
    query: session.query,
    rolledBack: session.rolledBack,
    drop: async () => {
      await session.close();
      await admin(mySession, serviceUrls.mysql, `DROP DATABASE IF EXISTS \`${name}\``);
    },
  };
  made.push(db);
  return db;
}

export async function createSqlite(label: string): Promise<Scratch> {
  const dir = mkdtempSync(join(tmpdir(), `${scratchName(label)}-`));
  const path = join(dir, 'db.sqlite');
  const open = () => {
    const d = new Database(path);
    d.defaultSafeIntegers(true);
    return d;
  };
  open().close();
  const db: Scratch = {
    provider: 'sqlite',
    name: path,
    url: `sqlite:${path}`,
    script: async (sql) => {
      const d = open();
      try {
        d.exec(sql);
        return '';
      } finally {
        d.close();
      }
    },
    query: async (sql, params = []) => {
      const d = open();
      try {
        const stmt = d.prepare(sql);
        if (stmt.reader) return stmt.raw(true).all(...(params as unknown[])) as unknown[][];
        stmt.run(...(params as unknown[]));
        return [];
      } finally {
        d.close();
      }
    },
    rolledBack: async () => {
      throw new Error('no default-id probes on SQLite');
    },
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
  made.push(db);
  return db;
}

export function createScratch(provider: Provider, label: string): Promise<Scratch> {
  return provider === 'postgres'
    ? createPostgres(label)
    : provider === 'mysql'
      ? createMariadb(label)
      : createSqlite(label);
}

/** `pg_dump --schema-only` of a PostgreSQL scratch database. */
export function pgDumpSchema(db: Scratch): Promise<string> {
  return run('pg_dump', ['--schema-only', '-d', db.url]);
}

/** `mysqldump --no-data` of a MariaDB scratch database (tables, views, triggers). */
export function mysqlDumpSchema(db: Scratch): Promise<string> {
  return run('mysqldump', ['--no-data', '--skip-comments', ...mysqlArgs(db.name)]);
}

/** Drops every scratch database this process made (the ones already dropped included: IF EXISTS). */
export async function dropAll(): Promise<void> {
  for (const db of made.splice(0)) await db.drop().catch(() => undefined);
}
