/**
 * One instance of a deployment, as a child process (see scenario.ts): it tries to lead through a lease store shared
 * with the other instances, and at every tick runs a fake scheduled job when it leads. The job's publish step is the
 * store's fenced write of (tick, token); a write the store refuses is reported, not retried. Every event goes to the
 * parent over IPC with the wall-clock time it happened.
 *
 * Run with `node --conditions=koan-source --import ./register.mjs instance.ts '<json InstanceConfig>'`.
 */
import { Leadership, type Lease, LeaseLock } from '@koan/data-backup/lease';
import { createPostgresLeaseStore } from '@koan/data-postgres/lease';
import { createRedisLeaseStore } from '@koan/data-redis/lease';

export interface InstanceConfig {
  readonly backend: 'postgres' | 'redis';
  readonly url: string;
  /** The lease table (PostgreSQL) or key prefix (Redis), unique to the run. */
  readonly namespace: string;
  /** PostgreSQL: the table of runs; Redis: unused (the runs list sits beside the lease key). */
  readonly runsTable: string;
  readonly leaseName: string;
  readonly ttlMs: number;
  readonly periodMs: number;
  readonly ticks: number;
  readonly jobMs: number;
}

export type InstanceEvent =
  | { readonly type: 'ready' }
  | { readonly type: 'leading'; readonly token: number }
  | { readonly type: 'following' }
  | { readonly type: 'idle'; readonly tick: number }
  | { readonly type: 'job-started'; readonly tick: number; readonly token: number }
  | { readonly type: 'published'; readonly tick: number; readonly token: number }
  | { readonly type: 'refused'; readonly tick: number; readonly token: number; readonly code: string }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'done' };

/** The job's publish step: records (tick, token) only while `lease` is current, through the store's fence. */
type Publish = (lease: Lease, tick: number) => Promise<void>;

function open(config: InstanceConfig): { lock: LeaseLock; publish: Publish } {
  if (config.backend === 'postgres') {
    const store = createPostgresLeaseStore({ connectionString: config.url, table: config.namespace });
    return {
      lock: new LeaseLock(store),
      publish: (lease, tick) =>
        store.fenced(lease, async (client) => {
          await client.query(`INSERT INTO ${config.runsTable} (tick, token, pid) VALUES ($1, $2, $3)`, [
            tick,
            lease.token,
            process.pid,
          ]);
        }),
    };
  }
  const store = createRedisLeaseStore({ url: config.url, keyPrefix: config.namespace });
  return {
    lock: new LeaseLock(store),
    publish: async (lease, tick) => {
      const run = JSON.stringify({ tick, token: lease.token, pid: process.pid });
      await store.fencedCommand(lease, 'RPUSH', `${store.keyOf(lease.name)}:runs`, run);
    },
  };
}

const send = (event: InstanceEvent) => process.send?.({ ...event, at: Date.now(), pid: process.pid });
const sleepUntil = (at: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));

async function runJob(lease: Lease, tick: number, publish: Publish, jobMs: number): Promise<void> {
  send({ type: 'job-started', tick, token: lease.token });
  await new Promise((resolve) => setTimeout(resolve, jobMs)); // the backup itself
  try {
    // Deliberately no look at `lease.held` first: the store alone must refuse a stale holder.
    await publish(lease, tick);
    send({ type: 'published', tick, token: lease.token });
  } catch (e) {
    const code = (e as { code?: string }).code ?? 'unknown';
    if (code !== 'LEASE_LOST') throw e;
    send({ type: 'refused', tick, token: lease.token, code });
  }
}

async function main(config: InstanceConfig): Promise<void> {
  const { lock, publish } = open(config);
  const leadership = new Leadership(lock, config.leaseName, {
    ttlMs: config.ttlMs,
    // Followers try often, so the takeover time measures the lease, not the polling.
    retryEveryMs: 50,
    onChange: (lease) => send(lease ? { type: 'leading', token: lease.token } : { type: 'following' }),
    onError: (e) => send({ type: 'error', message: (e as Error).message }),
  });
  const start = new Promise<number>((resolve) =>
    process.on('message', (m: { type?: string; t0?: number }) => {
      if (m.type === 'start' && typeof m.t0 === 'number') resolve(m.t0);
    }),
  );
  send({ type: 'ready' });
  const t0 = await start;
  await sleepUntil(t0);
  leadership.start(); // every instance at the same moment: they race for the lease
  for (let tick = 0; tick < config.ticks; tick++) {
    // Ticks fall half a period after t0, away from the start race.
    await sleepUntil(t0 + (tick + 0.5) * config.periodMs);
    const lease = leadership.lease;
    if (lease) await runJob(lease, tick, publish, config.jobMs);
    else send({ type: 'idle', tick });
  }
  await leadership.stop();
  await lock.close();
  send({ type: 'done' });
  process.disconnect?.();
}

main(JSON.parse(process.argv[2] ?? '{}') as InstanceConfig).catch((e: unknown) => {
  send({ type: 'error', message: String((e as Error)?.stack ?? e) });
  process.exitCode = 1;
  process.disconnect?.();
});
