/** A scratch PostgreSQL database per test file (random name, dropped after), and SQL run outside the adapter. */
import { randomBytes } from 'node:crypto';
import { probeService, serviceUrls } from '@koan/data/testing';
import pg from 'pg';
import { createPostgresAdapter, type PostgresAdapter } from '../src/index.js';

export interface Scratch {
  readonly url: string;
  /** Runs SQL on a connection of its own (never through the adapter). */
  sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  adapter(schema?: string): Promise<PostgresAdapter>;
  drop(): Promise<void>;
}

async function once<R extends pg.QueryResultRow>(url: string, text: string, values?: unknown[]): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Why PostgreSQL tests are skipped (CI=true fails instead), or undefined when the server answers. */
export function probe(): Promise<string | undefined> {
  return probeService('postgres', async () => {
    await once(serviceUrls.postgres, 'SELECT 1');
  });
}

export async function createScratch(label: string): Promise<Scratch> {
  const name = `koan_${label}_${randomBytes(4).toString('hex')}`;
  await once(serviceUrls.postgres, `CREATE DATABASE ${name}`);
  const url = new URL(serviceUrls.postgres);
  url.pathname = `/${name}`;
  const adapters: PostgresAdapter[] = [];
  return {
    url: url.toString(),
    sql: (text, values) => once(url.toString(), text, values),
    adapter: async (schema) => {
      const a = createPostgresAdapter({ connectionString: url.toString(), ...(schema ? { schema } : {}), poolSize: 2 });
      await a.init();
      adapters.push(a);
      return a;
    },
    drop: async () => {
      for (const a of adapters) await a.close().catch(() => undefined);
      await once(serviceUrls.postgres, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
