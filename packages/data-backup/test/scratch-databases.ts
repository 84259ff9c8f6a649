/**
 * Scratch databases for cross-provider tests: an empty SQLite file, PostgreSQL database or MariaDB database,
 * optionally loaded with a dialect script (Chinook), each gated with `probeService` and dropped by `drop()`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SourceConfig } from '@koan/data';
import { probeService, serviceUrls } from '@koan/data/testing';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';

export type Dialect = 'sqlite' | 'postgres' | 'mariadb';
export const DIALECTS: readonly Dialect[] = ['sqlite', 'postgres', 'mariadb'];

export interface ScratchDatabase {
  readonly dialect: Dialect;
  /** Database (or file) name, unique to this run. */
  readonly name: string;
  readonly source: SourceConfig;
  /** Runs SQL (several statements) directly, outside any adapter. */
  exec(sql: string): Promise<void>;
  drop(): Promise<void>;
}

/** Undefined when the dialect's server answers, else why its tests are skipped (CI=true fails instead). */
export async function probeDialect(dialect: Dialect): Promise<string | undefined> {
  if (dialect === 'sqlite') return undefined;
  if (dialect === 'postgres')
    return probeService('postgres', async () => {
      const client = new pg.Client({ connectionString: serviceUrls.postgres, connectionTimeoutMillis: 3000 });
      await client.connect();
      await client.end();
    });
  return probeService('mysql', async () => {
    const conn = await mysql.createConnection({ uri: serviceUrls.mysql, connectTimeout: 3000 });
    await conn.end();
  });
}

/** Undefined when Redis answers, else why its tests are skipped (CI=true fails instead). */
export function probeRedis(): Promise<string | undefined> {
  return probeService('redis', async () => {
    const r = new Redis(serviceUrls.redis, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    try {
      await r.connect();
      await r.ping();
    } finally {
      r.disconnect();
    }
  });
}

/** Deletes every Redis key that starts with one of `prefixes` (SCAN, bounded). */
export async function deleteRedisKeys(...prefixes: string[]): Promise<void> {
  const r = new Redis(serviceUrls.redis);
  try {
    for (const prefix of prefixes) {
      let cursor = '0';
      for (let i = 0; i < 10_000; i++) {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        if (keys.length) await r.del(...keys);
        cursor = next;
        if (cursor === '0') break;
      }
    }
  } finally {
    r.disconnect();
  }
}

/** Text of a dialect script without a BOM and with LF line ends. */
export async function readScript(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
}

function urlWithDatabase(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

async function pgAdmin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serviceUrls.postgres });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function run(command: string, args: readonly string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { maxBuffer: 1 << 24 }, (err, _stdout, stderr) =>
      err ? reject(new Error(`${command} failed: ${stderr || err.message}`)) : resolve(),
    );
    child.stdin?.end(input);
  });
}

/**
 * A fresh, empty database of `dialect`; with `script`, loaded by the dialect's own tool (better-sqlite3, psql,
 * the mysql CLI). The script's own CREATE DATABASE / connect lines are dropped so it loads into the scratch one.
 */
export async function createScratch(dialect: Dialect, label: string, script?: string): Promise<ScratchDatabase> {
  const name = `koan_${label}_${randomBytes(4).toString('hex')}`;
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), `${name}-`));
    const path = join(dir, 'db.sqlite');
    const exec = async (sql: string) => {
      const db = new Database(path);
      try {
        db.exec(sql);
      } finally {
        db.close();
      }
    };
    if (script) await exec(script);
    else await exec('SELECT 1');
    return {
      dialect,
      name,
      source: { provider: 'sqlite', settings: { path } },
      exec,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  if (dialect === 'postgres') {
    const url = urlWithDatabase(serviceUrls.postgres, name);
    await pgAdmin(`CREATE DATABASE ${name}`);
    const exec = async (sql: string) => run('psql', ['-q', '-X', '-v', 'ON_ERROR_STOP=1', '-d', url], sql);
    if (script)
      await exec(
        script
          .split('\n')
          .filter((line) => !/^\s*(DROP DATABASE|CREATE DATABASE|\\c)\b/i.test(line))
          .join('\n'),
      );
    return {
      dialect,
      name,
      source: { provider: 'postgres', settings: { connectionString: url, poolSize: 2 } },
      exec,
      drop: () => pgAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
    };
  }
  const admin = await mysql.createConnection({ uri: serviceUrls.mysql });
  try {
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  } finally {
    await admin.end();
  }
  const url = new URL(serviceUrls.mysql);
  const args = [
    `-h${url.hostname}`,
    `-P${url.port || '3306'}`,
    `-u${decodeURIComponent(url.username || 'root')}`,
    '--default-character-set=utf8mb4',
    name,
  ];
  if (url.password) args.push(`-p${decodeURIComponent(url.password)}`);
  const exec = (sql: string) => run('mysql', args, sql);
  if (script) await exec(script.replace(/^\s*(DROP DATABASE IF EXISTS|CREATE DATABASE|USE)\s+`?\w+`?\s*;\s*$/gim, ''));
  return {
    dialect,
    name,
    source: { provider: 'mysql', settings: { uri: urlWithDatabase(serviceUrls.mysql, name), poolSize: 2 } },
    exec,
    drop: async () => {
      const conn = await mysql.createConnection({ uri: serviceUrls.mysql });
      try {
        await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await conn.end();
      }
    },
  };
}
