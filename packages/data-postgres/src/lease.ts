/**
 * `@koan/data-postgres/lease`: a lease store on PostgreSQL (the `LeaseStore` contract of `@koan/data-backup/lease`),
 * so that among N instances sharing a database exactly one runs the schedules, maintenance and retention.
 *
 * A lease is a row of a table (`name`, fencing `token`, `holder`, `expires_at` by the server's clock), not a session
 * advisory lock, because a session lock lasts exactly as long as its connection:
 * - a holder that hangs (or is paused) with its connection open would keep it forever; a row expires on time;
 * - it needs one dedicated connection per lease, which a pool or a transaction-mode PgBouncer does not give;
 * - its holder learns it lost the lock only when its connection fails; a row lease has a deadline the holder counts.
 * A SIGKILLed holder writes nothing more and its row expires after the lease time. The row is never deleted, so its
 * token keeps increasing across holders. The one advisory lock used is transaction-scoped: it serializes the table's
 * creation among instances starting together.
 *
 * `fenced()` is the publish step a stale holder cannot take: it runs the caller's statements in a transaction that
 * first locks the lease row (`FOR SHARE`) and checks the grant is current; a takeover must update that row, so it
 * waits until the fenced transaction ends, and a fenced transaction of a superseded grant writes nothing.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { DataError } from '@koan/data';
import pg from 'pg';
import { type PostgresSettings, withPassword } from './postgres-adapter.js';

/** One grant of a named lease (the `LeaseGrant` of `@koan/data-backup/lease`). */
export interface PostgresLeaseGrant {
  readonly name: string;
  readonly token: number;
  readonly holder: string;
}

/** Where the lease table is: the connection settings of a PostgreSQL source, or an existing pool. */
export interface PostgresLeaseSettings
  extends Pick<PostgresSettings, 'connectionString' | 'host' | 'port' | 'user' | 'password' | 'database'> {
  /** An existing pool to use instead of opening one (`close()` leaves it open). */
  readonly pool?: pg.Pool;
  /** Schema of the lease table (created if missing). @default 'public' */
  readonly schema?: string;
  /** The lease table, one row per lease name (created if missing). @default 'koan_lease' */
  readonly table?: string;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

function identifier(option: string, value: string): string {
  if (!IDENTIFIER.test(value))
    throw new DataError(
      'INVALID_SETTINGS',
      `[koan] [postgres] invalid lease ${option} ${JSON.stringify(value)}: expected letters, digits and _ (at most 63, not starting with a digit)`,
    );
  return `"${value}"`;
}

function leaseLost(grant: PostgresLeaseGrant): DataError {
  return new DataError(
    'LEASE_LOST',
    `[koan] [postgres] the lease ${JSON.stringify(grant.name)} (token ${grant.token}) is no longer held by this holder: the fenced write was refused`,
    { details: { lease: grant.name, token: grant.token } },
  );
}

export class PostgresLeaseStore {
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #schema: string;
  readonly #table: string;
  /** `"schema"."table"`, checked. */
  readonly #qualified: string;
  #ready: Promise<void> | undefined;

  constructor(settings: PostgresLeaseSettings = {}) {
    this.#schema = settings.schema ?? 'public';
    this.#table = settings.table ?? 'koan_lease';
    this.#qualified = `${identifier('schema', this.#schema)}.${identifier('table', this.#table)}`;
    this.#ownsPool = settings.pool === undefined;
    this.#pool = settings.pool ?? openPool(settings);
  }

  /** The lease table, `schema.table`. */
  get table(): string {
    return `${this.#schema}.${this.#table}`;
  }

  async tryAcquire(name: string, ttlMs: number): Promise<PostgresLeaseGrant | undefined> {
    await this.#ensureTable();
    const holder = `${hostname()}/${process.pid}/${randomUUID()}`;
    // One statement: a new name is inserted; an expired lease is taken over with the next token. The WHERE of the
    // update is checked on the newest row version, after waiting for a concurrent acquirer or fenced transaction.
    const { rows } = await this.#pool.query<{ token: string }>(
      `INSERT INTO ${this.#qualified} AS l (name, token, holder, expires_at)
       VALUES ($1, 1, $2, clock_timestamp() + $3::float8 * interval '1 millisecond')
       ON CONFLICT (name) DO UPDATE
         SET token = l.token + 1, holder = EXCLUDED.holder,
             expires_at = clock_timestamp() + $3::float8 * interval '1 millisecond'
         WHERE l.expires_at <= clock_timestamp()
       RETURNING token`,
      [name, holder, ttlMs],
    );
    const row = rows[0];
    return row && { name, token: Number(row.token), holder };
  }

  async renew(grant: PostgresLeaseGrant, ttlMs: number): Promise<boolean> {
    await this.#ensureTable();
    const { rowCount } = await this.#pool.query(
      `UPDATE ${this.#qualified} SET expires_at = clock_timestamp() + $4::float8 * interval '1 millisecond'
       WHERE name = $1 AND token = $2 AND holder = $3 AND expires_at > clock_timestamp()`,
      [grant.name, grant.token, grant.holder, ttlMs],
    );
    return rowCount === 1;
  }

  async release(grant: PostgresLeaseGrant): Promise<void> {
    await this.#ensureTable();
    await this.#pool.query(
      `UPDATE ${this.#qualified} SET expires_at = '-infinity' WHERE name = $1 AND token = $2 AND holder = $3`,
      [grant.name, grant.token, grant.holder],
    );
  }

  async isCurrent(grant: PostgresLeaseGrant): Promise<boolean> {
    await this.#ensureTable();
    const { rowCount } = await this.#pool.query(
      `SELECT 1 FROM ${this.#qualified}
       WHERE name = $1 AND token = $2 AND holder = $3 AND expires_at > clock_timestamp()`,
      [grant.name, grant.token, grant.holder],
    );
    return rowCount === 1;
  }

  /**
   * Runs `work` in a transaction that holds the lease row (shared) and has checked that `grant` is current: its writes
   * commit only under that grant, before any takeover. Throws `LEASE_LOST` (writing nothing) when the grant is not
   * current. Keep `work` short: the holder's own renewal waits for it too.
   */
  async fenced<T>(grant: PostgresLeaseGrant, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    await this.#ensureTable();
    const client = await this.#pool.connect();
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const { rowCount } = await client.query(
        `SELECT 1 FROM ${this.#qualified}
         WHERE name = $1 AND token = $2 AND holder = $3 AND expires_at > clock_timestamp() FOR SHARE`,
        [grant.name, grant.token, grant.holder],
      );
      if (rowCount !== 1) throw leaseLost(grant);
      const value = await work(client);
      await client.query('COMMIT');
      return value;
    } catch (e) {
      await client.query('ROLLBACK').catch((rollbackFailed: unknown) => {
        broken = rollbackFailed;
      });
      throw e;
    } finally {
      client.release(broken === undefined ? undefined : true);
    }
  }

  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.end();
  }

  #ensureTable(): Promise<void> {
    this.#ready ??= this.#createTable().catch((e: unknown) => {
      this.#ready = undefined; // the next request tries again
      throw e;
    });
    return this.#ready;
  }

  async #createTable(): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      // Instances starting together would race in CREATE TABLE IF NOT EXISTS (a duplicate type error): one at a time.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`koan lease table ${this.table}`]);
      if (this.#schema !== 'public') await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.#schema}"`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.#qualified} (
           name text PRIMARY KEY,
           token bigint NOT NULL,
           holder text NOT NULL,
           expires_at timestamptz NOT NULL
         )`,
      );
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }
}

function openPool(settings: PostgresLeaseSettings): pg.Pool {
  const { connectionString, host, port, user, password, database } = settings;
  const pool = new pg.Pool({
    ...(connectionString ? { connectionString: withPassword(connectionString, password) } : {}),
    ...(host ? { host } : {}),
    ...(port ? { port } : {}),
    ...(user ? { user } : {}),
    ...(password ? { password } : {}),
    ...(database ? { database } : {}),
    // Lease requests are small; one connection renews while another runs a fenced transaction.
    max: 3,
  });
  // An idle client that loses its server is removed by the pool; without a listener the error would crash.
  pool.on('error', () => {});
  return pool;
}

/**
 * A PostgreSQL lease store for `new LeaseLock(store)` (`@koan/data-backup/lease`).
 *
 * @example
 * const lock = new LeaseLock(createPostgresLeaseStore({ connectionString: process.env.DATABASE_URL }));
 */
export function createPostgresLeaseStore(settings: PostgresLeaseSettings = {}): PostgresLeaseStore {
  return new PostgresLeaseStore(settings);
}
