/**
 * `@koan/data-redis/lease`: a lease store on Redis (the `LeaseStore` contract of `@koan/data-backup/lease`), so that
 * among N instances sharing a Redis exactly one runs the schedules, maintenance and retention.
 *
 * A lease is a key set with `SET NX PX` to a random value (the holder's secret); renewal and release are Lua
 * compare-and-set scripts, so only the holder whose value is still there extends or deletes it. The fencing token comes
 * from `INCR` on a counter key that is never deleted, taken in the same script as the `SET`, so tokens only grow. Redis
 * expires the key by its own clock: a SIGKILLed holder's lease ends after the lease time.
 *
 * Both keys of a lease carry the hash tag `{name}`, so they live in one slot of a Redis Cluster. `fencedCommand()` runs
 * one write only while the grant is current, in one script; in a cluster its key must carry the same hash tag.
 */
import { randomBytes } from 'node:crypto';
import { DataError } from '@koan/data';
import { Redis } from 'ioredis';

/** One grant of a named lease (the `LeaseGrant` of `@koan/data-backup/lease`). */
export interface RedisLeaseGrant {
  readonly name: string;
  readonly token: number;
  readonly holder: string;
}

export interface RedisLeaseSettings {
  /** Connection URL. @default 'redis://127.0.0.1:6379' */
  readonly url?: string;
  /** Used when the URL names no password. */
  readonly password?: string;
  /** Logical database; overrides the URL's `/db`. */
  readonly db?: number;
  /** An existing client to use instead of connecting (`close()` leaves it open). */
  readonly client?: Redis;
  /** First part of the lease keys. @default 'koan:lease:' */
  readonly keyPrefix?: string;
}

// KEYS: lease, token counter. ARGV: holder, ttl ms. The token, or nil when the lease is held.
const ACQUIRE = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('INCR', KEYS[2])
`;
// KEYS: lease. ARGV: holder, ttl ms. 1 when extended. A key that expired is gone, so it is never renewed.
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;
// KEYS: lease. ARGV: holder.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
// KEYS: lease, the key written. ARGV: holder, command, its arguments after the key.
const FENCED = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('LEASE_LOST') end
return redis.call(ARGV[2], KEYS[2], unpack(ARGV, 3))
`;

export class RedisLeaseStore {
  readonly #client: Redis;
  readonly #ownsClient: boolean;
  readonly #prefix: string;

  constructor(settings: RedisLeaseSettings = {}) {
    this.#prefix = settings.keyPrefix ?? 'koan:lease:';
    this.#ownsClient = settings.client === undefined;
    this.#client = settings.client ?? openClient(settings);
  }

  /** The key holding the lease `name` (its counter is this key plus `:token`). */
  keyOf(name: string): string {
    return `${this.#prefix}{${name}}`;
  }

  async tryAcquire(name: string, ttlMs: number): Promise<RedisLeaseGrant | undefined> {
    const holder = randomBytes(16).toString('hex');
    const key = this.keyOf(name);
    const token = await this.#client.eval(ACQUIRE, 2, key, `${key}:token`, holder, ttlMs);
    return token === null ? undefined : { name, token: Number(token), holder };
  }

  async renew(grant: RedisLeaseGrant, ttlMs: number): Promise<boolean> {
    return (await this.#client.eval(RENEW, 1, this.keyOf(grant.name), grant.holder, ttlMs)) === 1;
  }

  async release(grant: RedisLeaseGrant): Promise<void> {
    await this.#client.eval(RELEASE, 1, this.keyOf(grant.name), grant.holder);
  }

  async isCurrent(grant: RedisLeaseGrant): Promise<boolean> {
    return (await this.#client.get(this.keyOf(grant.name))) === grant.holder;
  }

  /**
   * Runs one write command (`RPUSH key value`, `HSET key field value`...) on `key` only while `grant` is current, in one
   * script. Throws `LEASE_LOST` (writing nothing) when it is not.
   */
  async fencedCommand(
    grant: RedisLeaseGrant,
    command: string,
    key: string,
    ...args: (string | number)[]
  ): Promise<unknown> {
    try {
      return await this.#client.eval(FENCED, 2, this.keyOf(grant.name), key, grant.holder, command, ...args);
    } catch (e) {
      if (!(e instanceof Error) || !/\bLEASE_LOST\b/.test(e.message)) throw e;
      throw new DataError(
        'LEASE_LOST',
        `[koan] [redis] the lease ${JSON.stringify(grant.name)} (token ${grant.token}) is no longer held by this holder: the fenced ${command} was refused`,
        { cause: e, details: { lease: grant.name, token: grant.token } },
      );
    }
  }

  async close(): Promise<void> {
    if (this.#ownsClient) await this.#client.quit().catch(() => this.#client.disconnect());
  }
}

function openClient(settings: RedisLeaseSettings): Redis {
  // ioredis fills options from the URL first, so a password in the URL wins over this one.
  const client = new Redis(settings.url ?? 'redis://127.0.0.1:6379', {
    ...(settings.password === undefined ? {} : { password: settings.password }),
    ...(settings.db === undefined ? {} : { db: settings.db }),
    // A lease request that waits long is useless (the holder's deadline passes): fail it and let the caller retry.
    maxRetriesPerRequest: 2,
  });
  // Failures surface as rejected requests; without a listener ioredis prints every failed reconnect.
  client.on('error', () => {});
  return client;
}

/**
 * A Redis lease store for `new LeaseLock(store)` (`@koan/data-backup/lease`).
 *
 * @example
 * const lock = new LeaseLock(createRedisLeaseStore({ url: 'redis://cache:6379' }));
 */
export function createRedisLeaseStore(settings: RedisLeaseSettings = {}): RedisLeaseStore {
  return new RedisLeaseStore(settings);
}
