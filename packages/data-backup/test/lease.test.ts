/**
 * Leases (`@koan/data-backup/lease`): the conformance suite over the in-process, PostgreSQL and Redis stores, the
 * holder's own checks (arguments, a store that stops answering), and leadership among instances of one process.
 * Several processes: lease-processes-*.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { serviceUrls } from '@koan/data/testing';
import {
  InProcessLeaseStore,
  Leadership,
  type Lease,
  type LeaseGrant,
  LeaseLock,
  type LeaseStore,
} from '@koan/data-backup/lease';
import { createPostgresLeaseStore } from '@koan/data-postgres/lease';
import { createRedisLeaseStore } from '@koan/data-redis/lease';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { describeLeaseStore, eventually } from './lease-conformance.js';
import { deleteRedisKeys, probeDialect, probeRedis } from './scratch-databases.js';

const suffix = randomBytes(4).toString('hex');
const skipPostgres = await probeDialect('postgres');
const skipRedis = await probeRedis();

describeLeaseStore('in-process', { skip: undefined }, async () => ({
  store: new InProcessLeaseStore(),
  close: async () => {},
}));

describeLeaseStore('postgres', { skip: skipPostgres, fenced: true }, async () => {
  const table = `koan_lease_${suffix}`;
  const writes = `koan_lease_writes_${suffix}`;
  const admin = new pg.Client({ connectionString: serviceUrls.postgres });
  await admin.connect();
  await admin.query(`CREATE TABLE ${writes} (id serial PRIMARY KEY, name text NOT NULL, value text NOT NULL)`);
  const store = createPostgresLeaseStore({ connectionString: serviceUrls.postgres, table });
  return {
    store,
    fencedWrite: (grant, value) =>
      store.fenced(grant, async (client) => {
        await client.query(`INSERT INTO ${writes} (name, value) VALUES ($1, $2)`, [grant.name, value]);
      }),
    fencedWrites: async (name) =>
      (await admin.query(`SELECT value FROM ${writes} WHERE name = $1 ORDER BY id`, [name])).rows.map((r) => r.value),
    close: async () => {
      await store.close();
      await admin.query(`DROP TABLE IF EXISTS ${writes}, ${table}`);
      await admin.end();
    },
  };
});

describeLeaseStore('redis', { skip: skipRedis, fenced: true }, async () => {
  const prefix = `koanlease${suffix}:`;
  const store = createRedisLeaseStore({ url: serviceUrls.redis, keyPrefix: prefix });
  const reader = new Redis(serviceUrls.redis);
  const writesOf = (name: string) => `${store.keyOf(name)}:writes`;
  return {
    store,
    fencedWrite: async (grant, value) => {
      await store.fencedCommand(grant, 'RPUSH', writesOf(grant.name), value);
    },
    fencedWrites: (name) => reader.lrange(writesOf(name), 0, -1),
    close: async () => {
      await store.close();
      reader.disconnect();
      await deleteRedisKeys(prefix);
    },
  };
});

/** A store that answers like `inner` until `fail` is set, then rejects every request (an unreachable server). */
class FailingStore implements LeaseStore {
  fail = false;
  constructor(readonly inner: LeaseStore) {}
  #check(): void {
    if (this.fail) throw new Error('connection refused');
  }
  async tryAcquire(name: string, ttlMs: number) {
    this.#check();
    return this.inner.tryAcquire(name, ttlMs);
  }
  async renew(grant: LeaseGrant, ttlMs: number) {
    this.#check();
    return this.inner.renew(grant, ttlMs);
  }
  async release(grant: LeaseGrant) {
    this.#check();
    return this.inner.release(grant);
  }
  async isCurrent(grant: LeaseGrant) {
    this.#check();
    return this.inner.isCurrent(grant);
  }
  async close() {}
}

describe('the holder of a lease', () => {
  it('refuses a name that is empty or too long and a lease time that is not a whole number of ms in range', async () => {
    const lock = new LeaseLock(new InProcessLeaseStore());
    for (const [name, ttl] of [
      ['', 1000],
      ['x'.repeat(257), 1000],
      ['ok', 0],
      ['ok', 1.5],
      ['ok', 2 ** 31],
    ] as const)
      await expect(lock.acquire(name, ttl)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });

  it('is lost at its own deadline when the store stops answering, and says why', async () => {
    const store = new FailingStore(new InProcessLeaseStore());
    const lease = (await new LeaseLock(store).acquire('unreachable', 300))!;
    store.fail = true;
    await expect(lease.renew()).rejects.toThrow('connection refused');
    await eventually(async () => (lease.signal.aborted ? true : undefined));
    expect(lease.held).toBe(false);
    expect(lease.signal.reason).toMatchObject({ code: 'LEASE_LOST', message: expect.stringContaining('300 ms') });
    await expect(lease.assertHeld()).rejects.toMatchObject({ code: 'LEASE_LOST' });
  });

  it('shares the process store between locks made without one', async () => {
    const name = `process-${suffix}`;
    const lease = (await new LeaseLock().acquire(name, 60_000))!;
    expect(await new LeaseLock().acquire(name, 60_000)).toBeUndefined();
    await lease.release();
  });
});

describe('leadership among the instances of one store', () => {
  it('has one leader at a time, and another takes over when it stops', async () => {
    const shared = new InProcessLeaseStore();
    const changes: string[] = [];
    const instances = ['a', 'b', 'c'].map((id) => ({
      id,
      leadership: new Leadership(new LeaseLock(shared), 'scheduler', {
        ttlMs: 300,
        onChange: (lease: Lease | undefined) => changes.push(`${id}:${lease ? lease.token : '-'}`),
      }),
    }));
    const leaders = () => instances.filter((i) => i.leadership.lease !== undefined);
    for (const i of instances) i.leadership.start();
    const first = await eventually(async () => (leaders().length === 1 ? leaders()[0] : undefined));
    // Followers keep trying for a while: still one leader.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(leaders().map((i) => i.id)).toEqual([first.id]);

    await first.leadership.stop();
    const second = await eventually(async () => {
      const now = leaders();
      return now.length === 1 && now[0] !== first ? now[0] : undefined;
    });
    expect(second.leadership.lease!.token).toBeGreaterThan(Number(changes[0]!.split(':')[1]));
    for (const i of instances) await i.leadership.stop();
    expect(leaders()).toEqual([]);
  });

  it('a leader cut off from its store stops leading at its deadline, and another takes over', async () => {
    const shared = new InProcessLeaseStore();
    const cut = new FailingStore(shared);
    const errors: unknown[] = [];
    const a = new Leadership(new LeaseLock(cut), 'scheduler', { ttlMs: 300, onError: (e) => errors.push(e) });
    const b = new Leadership(new LeaseLock(shared), 'scheduler', { ttlMs: 300 });
    a.start();
    await eventually(async () => a.lease);
    b.start();
    cut.fail = true;
    await eventually(async () => (a.lease === undefined && b.lease !== undefined ? true : undefined));
    expect(errors.length).toBeGreaterThan(0);
    await Promise.all([a.stop(), b.stop()]);
  });
});
