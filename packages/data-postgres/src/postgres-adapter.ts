import type { DataAdapter, DataRecord } from '@koan/data';
import { DataError, type EntitySchema, type FieldSpec } from '@koan/data';
import type {
  AdapterCapabilities,
  Consistency,
  DataProvider,
  DataReader,
  DataWriter,
  IntrospectionResult,
  StoreDescription,
  TransactionOptions,
} from '@koan/data/adapter-kit';
import {
  abortedOr,
  assertSetName,
  fieldNote,
  keyFieldsOf,
  keySpec,
  physicalName,
  setFromPhysicalName,
} from '@koan/data/adapter-kit';
import pg from 'pg';
import { only, relationOf } from './postgres-catalog.js';
import { introspectSchema, KOAN_COMMENT, readTables } from './postgres-introspector.js';
import { ABSENT, cancelOnAbort, type Lease, PostgresSession, TransactionSession } from './postgres-session.js';
import { PostgresStructure } from './postgres-structure.js';
import { columnType, keyArrayExpression, lit, q, SESSION_SETUP, toParam } from './type-mapping.js';

/**
 * Settings of a PostgreSQL source. A `connectionString` wins over the separate fields it sets; a `password` given
 * separately is used when the connection string names none (so the URL can sit in a file and the password in the
 * environment: `Koan__Data__Sources__<name>__Settings__Password`).
 */
export interface PostgresSettings {
  /** `postgres://user:password@host:port/database`. */
  readonly connectionString?: string;
  readonly host?: string;
  /** @default 5432 */
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  readonly database?: string;
  /** Schema holding the tables; created by `init()` if missing. @default 'public' */
  readonly schema?: string;
  /** Maximum pooled connections. @default 4 */
  readonly poolSize?: number;
}

const PROVIDER = 'postgres';

/** A key column's value as an element of its `keyArrayExpression` array (binary as base64 text). */
const keyParam = (spec: FieldSpec, value: unknown) =>
  spec.type === 'binary' ? Buffer.from(value as Uint8Array).toString('base64') : toParam(spec, value);

/**
 * A name as PostgreSQL keeps it: at most 63 bytes (NAMEDATALEN - 1), cut at a character boundary, and quoted when it
 * holds a `.` or `"`, so `schema.table` reads one way only.
 */
function identifier(name: string): string {
  let kept = name;
  if (Buffer.byteLength(name) > 63) {
    kept = '';
    for (const ch of name) {
      if (Buffer.byteLength(kept + ch) > 63) break;
      kept += ch;
    }
  }
  return /[."]/.test(kept) ? `"${kept.replaceAll('"', '""')}"` : kept;
}

/**
 * `connectionString` with `password` filled in when it is a URL naming none. (node-postgres lets every part of a
 * connection string override the separate fields, an absent password included, so a separate password would be lost.)
 */
export function withPassword(connectionString: string, password: string | undefined): string {
  if (!password || !/^postgres(ql)?:\/\//i.test(connectionString)) return connectionString;
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    return connectionString;
  }
  if (url.password) return connectionString;
  url.password = encodeURIComponent(password);
  return url.toString();
}

// Only types JS holds exactly are parsed (bool, int2, int4, oid, float4, float8, json, jsonb, bytea, text[]); everything
// else stays text, so int8, numeric and timestamps are never rounded or shifted through Number or Date. Data reads
// never meet json or arrays raw: their read expressions give text (see `readExpression`).
const PARSED_TYPES = new Set([16, 21, 23, 26, 700, 701, 114, 3802, 17, 1009]);
const asText = (value: string): string => value;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    PARSED_TYPES.has(oid) || format === 'binary'
      ? pg.types.getTypeParser(oid, format ?? 'text')
      : asText) as typeof pg.types.getTypeParser,
};

/**
 * The PostgreSQL adapter. Reads stream through a server-side cursor in key order; `exportJsonLines`
 * lets the server build archive JSON Lines; `bulk` imports use COPY.
 */
export class PostgresAdapter extends PostgresSession implements DataAdapter {
  readonly provider = PROVIDER;
  readonly capabilities: AdapterCapabilities = Object.freeze({
    transactions: true,
    snapshotReads: true,
    nativeUpsert: true,
    bulkLoad: true,
    orderedStreaming: true,
    sets: true,
    introspection: true,
    ttl: false,
    nonFiniteNumbers: true,
  });
  /** Native DDL capture and replay (see `StructureFacet`). */
  readonly structure: PostgresStructure = new PostgresStructure(this);
  readonly #settings: Readonly<PostgresSettings>;
  readonly #context: { readonly source: string };
  #pool: pg.Pool | undefined;

  constructor(settings: PostgresSettings, context: { readonly source: string } = { source: 'default' }) {
    super({ schema: settings.schema ?? 'public', acquire: () => this!.#lease() });
    this.#settings = Object.freeze({ ...settings });
    this.#context = context;
  }

  /** The PostgreSQL schema holding this source's tables. */
  get schema(): string {
    return this.source.schema;
  }

  /** The pg pool (created by `init()`), for callers that need raw SQL. */
  get pool(): pg.Pool {
    if (!this.#pool)
      throw new DataError('NOT_INITIALIZED', '[koan] [postgres] adapter used before init() or after close()');
    return this.#pool;
  }

  async #lease(): Promise<Lease> {
    const client = await this.pool.connect();
    return {
      client,
      inTransaction: false,
      shared: false,
      release: async (destroy) => client.release(destroy === true ? true : undefined),
    };
  }

  async init(): Promise<void> {
    if (this.#pool) return;
    const { connectionString, host, port, user, password, database, poolSize = 4 } = this.#settings;
    const pool = new pg.Pool({
      ...(connectionString ? { connectionString: withPassword(connectionString, password) } : {}),
      ...(host ? { host } : {}),
      ...(port ? { port } : {}),
      ...(user ? { user } : {}),
      ...(password ? { password } : {}),
      ...(database ? { database } : {}),
      max: poolSize,
      types,
      onConnect: async (client: pg.ClientBase) => {
        await client.query(SESSION_SETUP);
      },
    });
    // An idle client that loses its server is removed by the pool; without a listener the error would crash.
    pool.on('error', () => {});
    try {
      // Opening creates nothing (a schema other than public is created with its first table, by ensureEntity).
      await pool.query('SELECT 1');
    } catch (e) {
      await pool.end().catch(() => {});
      throw e;
    }
    this.#pool = pool;
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end();
  }

  async dropEntity(entity: EntitySchema, set: string): Promise<void> {
    assertSetName(set);
    await this.pool.query(`DROP TABLE IF EXISTS ${this.table(entity, set)}`);
  }

  async ensureEntity(entity: EntitySchema, set: string): Promise<void> {
    assertSetName(set);
    if (!entity.keyless) keySpec(entity);
    const keys = keyFieldsOf(entity);
    const composite = keys.length > 1;
    const columns = Object.entries(entity.fields).map(([name, spec]) => {
      const isKey = keys.includes(name);
      const nullable = !isKey && (spec.nullable || spec.optional);
      const constraint = isKey && !composite ? ' PRIMARY KEY' : nullable ? '' : ' NOT NULL';
      return `${q(name)} ${columnType(spec, isKey)}${constraint}`;
    });
    if (composite) columns.push(`PRIMARY KEY (${keys.map(q).join(', ')})`);
    // A keyless table (an existing database's, restored elsewhere) gets no key either.
    const schema = this.schemaOf(entity);
    if (Object.entries(entity.fields).some(([n, s]) => s.optional && s.nullable && n !== entity.key))
      columns.push(`${q(ABSENT)} text[]`);
    const table = this.table(entity, set);
    // A table that exists is left as it is (its comment too: it may be the owner's). A table created here gets a
    // comment naming its entity, which introspect() reads back for databases whose code is not at hand.
    if (await relationOf(this.pool, schema, physicalName(entity, set))) return;
    // Each column notes the field it was created for (see fieldNote): introspection reads the exact schema back.
    const notes = Object.entries(entity.fields)
      .map(([name, spec]) => `COMMENT ON COLUMN ${table}.${q(name)} IS ${lit(fieldNote(spec))};`)
      .join('\n');
    await this.pool.query(
      `${schema !== 'public' ? `CREATE SCHEMA IF NOT EXISTS ${q(schema)};` : ''}
       CREATE TABLE IF NOT EXISTS ${table} (${columns.join(', ')});
       COMMENT ON TABLE ${table} IS ${lit(`${KOAN_COMMENT}${entity.name}`)};
       ${notes}`,
    );
  }

  async listSets(entity: EntitySchema): Promise<string[]> {
    const base = physicalName(entity, 'root');
    const res = await this.pool.query<{ t: string }>(
      `SELECT c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND (c.relname = $2 OR left(c.relname, length($2) + 1) = $2 || '#')`,
      [this.schemaOf(entity), base],
    );
    const sets = res.rows.map((r) => setFromPhysicalName(entity, r.t)).filter((s): s is string => s !== undefined);
    return sets.sort((a, b) => (a === 'root' ? -1 : b === 'root' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  }

  /** `schema.table`, each name cut to 63 bytes as the server cuts identifiers (see `DataAdapter.locationOf`). */
  locationOf(entity: EntitySchema, set: string): string {
    return `${identifier(this.schemaOf(entity))}.${identifier(physicalName(entity, set))}`;
  }

  async describe(entity: EntitySchema, set: string): Promise<StoreDescription> {
    const schema = this.schemaOf(entity);
    const location = `${schema}.${physicalName(entity, set)}`;
    const [table] = await readTables(this.pool, { schema, table: physicalName(entity, set) });
    if (!table) return { provider: PROVIDER, location, exists: false, columns: [], primaryKey: [] };
    return {
      provider: PROVIDER,
      location,
      exists: true,
      columns: table.columns.map((c) => ({ name: c.name, storeType: c.storeType, nullable: c.nullable })),
      primaryKey: table.primaryKey,
      foreignKeys: table.foreignKeys.map((fk) => ({
        columns: fk.columns,
        references: fk.referencesSchema === schema ? fk.references : `${fk.referencesSchema}.${fk.references}`,
        referencedColumns: fk.referencedColumns,
        name: fk.name,
      })),
      ...(table.comment ? { extra: { comment: table.comment } } : {}),
    };
  }

  /**
   * One REPEATABLE READ READ ONLY transaction holds the snapshot; its id (`pg_export_snapshot()`) lets each
   * read run on its own pooled connection at that same moment, so exports of several entities can run in
   * parallel. With `poolSize` 1 every read shares the one transaction instead.
   */
  async readSnapshot<T>(fn: (reader: DataReader & { readonly consistency: Consistency }) => Promise<T>): Promise<T> {
    return this.#inTransaction('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (client, shared) => {
      const snapshot =
        (this.#settings.poolSize ?? 4) > 1
          ? ((await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id')).rows[0]?.id ?? undefined)
          : undefined;
      const session = new PostgresSession(
        { schema: this.source.schema, acquire: snapshot ? () => this.#snapshotLease(snapshot) : async () => shared },
        true,
      );
      return fn(Object.assign(session, { consistency: 'snapshot' as const }));
    });
  }

  async #snapshotLease(snapshot: string): Promise<Lease> {
    const client = await this.pool.connect();
    try {
      await client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT ${lit(snapshot)}`);
    } catch (e) {
      client.release(true);
      throw e;
    }
    return {
      client,
      inTransaction: true,
      shared: false,
      release: async (destroy) => {
        if (!destroy) await client.query('COMMIT').catch(() => (destroy = true));
        client.release(destroy === true ? true : undefined);
      },
    };
  }

  /** See `DataAdapter.transaction`: an abort of `options.signal` cancels the statement in flight (CancelRequest). */
  async transaction<T>(fn: (writer: DataWriter) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    return this.#inTransaction('BEGIN', async (client, shared) => {
      let inFn = true; // COMMIT and ROLLBACK are not cancelled
      const stopCancel = cancelOnAbort(client, options.signal, () => inFn);
      try {
        const session = new TransactionSession({ schema: this.source.schema, acquire: async () => shared });
        const result = await fn(session);
        await session.checkDeferred(
          async (schema, table) => (await readTables(client, { schema, table }))[0]?.foreignKeys ?? [],
        );
        return result;
      } catch (e) {
        throw abortedOr(e, options.signal);
      } finally {
        inFn = false;
        stopCancel();
      }
    });
  }

  /** See `DataAdapter.estimateCount`: `pg_class.reltuples` (kept by ANALYZE and autovacuum; none before either ran). */
  async estimateCount(entity: EntitySchema, set: string): Promise<number | undefined> {
    const res = await this.pool.query<{ n: string | null }>(
      'SELECT reltuples::bigint AS n FROM pg_class WHERE oid = to_regclass($1)',
      [this.table(entity, set)],
    );
    const row = res.rows[0];
    if (!row) return 0;
    const n = Number(row.n);
    return n >= 0 ? n : undefined;
  }

  /**
   * See `DataAdapter.countExisting`: the records' keys as one array per key column, matched by the whole key with the
   * server's own equality of each column's type (what `ON CONFLICT` matches on).
   */
  async countExisting(entity: EntitySchema, set: string, records: readonly DataRecord[]): Promise<number> {
    if (entity.keyless || records.length === 0) return 0;
    const keys = keyFieldsOf(entity);
    const relation = await relationOf(this.pool, this.schemaOf(entity), physicalName(entity, set));
    if (!relation) return 0;
    const specs = keys.map((k) => entity.fields[k]!);
    const arrays = specs.map((spec, i) => keyArrayExpression(spec, `$${i + 1}`));
    const res = await this.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM unnest(${arrays.join(', ')}) AS koan_k(${keys.map((_, i) => `k${i}`).join(', ')})
       WHERE EXISTS (SELECT 1 FROM ${only(relation)}${this.table(entity, set)} t
                     WHERE ${keys.map((k, i) => `t.${q(k)} = koan_k.k${i}`).join(' AND ')})`,
      keys.map((k, i) => records.map((r) => keyParam(specs[i]!, r[k]))),
    );
    return Number(res.rows[0]?.n ?? 0);
  }

  async #inTransaction<T>(begin: string, fn: (client: pg.PoolClient, shared: Lease) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const shared: Lease = { client, inTransaction: true, shared: true, release: async () => {} };
    let broken = false;
    try {
      await client.query(begin);
      let result: T;
      try {
        result = await fn(client, shared);
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw e;
      }
      await client.query('COMMIT');
      return result;
    } catch (e) {
      broken ||= (e as { code?: string }).code === undefined;
      throw e;
    } finally {
      client.release(broken ? true : undefined);
    }
  }

  /** The tables as entities, with the tables it had to leave out and why, and the views (see `DataAdapter.introspect`). */
  async introspect(): Promise<IntrospectionResult> {
    return introspectSchema(this.pool, this.source.schema, this.#context.source);
  }
}

/**
 * Creates a PostgreSQL adapter; call `init()` before use.
 *
 * @example
 * const adapter = createPostgresAdapter({ connectionString: 'postgres://app@db/app', poolSize: 8 });
 * await adapter.init();
 */
export function createPostgresAdapter(
  settings: PostgresSettings = {},
  context?: { readonly source: string },
): PostgresAdapter {
  return new PostgresAdapter(settings, context);
}

/** The `postgres` provider the data runtime loads from `@koan/data-postgres`. */
export const provider: DataProvider<PostgresSettings> = Object.freeze({
  name: PROVIDER,
  settings: {
    connectionString: 'text',
    host: 'text',
    port: 'number',
    user: 'text',
    password: 'text',
    database: 'text',
    schema: 'text',
    poolSize: 'number',
  } as const,
  create: (settings: PostgresSettings, context: { readonly source: string; readonly cwd: string }) =>
    createPostgresAdapter(settings, { source: context.source }),
});
