/**
 * The holder's side of a lease, the same over every store: `LeaseLock.acquire` gives a `Lease` with its fencing token,
 * a local deadline, renewal, release, a signal aborted when the lease is lost, and `assertHeld()`, the check a holder
 * makes at its publish step.
 *
 * Why a local deadline: a holder must stop acting before anyone else can be granted the lease. It counts `ttlMs` from
 * before each acquire or renew request left (monotonic clock); the store counts from when that request arrived, so the
 * holder's deadline always comes first. A holder past its deadline is lost even if the store never said so.
 *
 * Lost is final: a lease that lost its time, whose renewal was refused, or whose `assertHeld()` found another holder,
 * never comes back. Failures carry the stable code `LEASE_LOST`.
 */
import { BackupError } from '../errors.js';
import { type LeaseGrant, type LeaseStore, processLeaseStore } from './store.js';

/** The longest delay a Node timer accepts (about 24.8 days): a longer lease could not be watched. */
const MAX_TTL_MS = 2_147_483_647;

/** A lease held by this process. Its `name`, `token` and `holder` are the store's grant (see `LeaseGrant`). */
export interface Lease extends LeaseGrant {
  readonly ttlMs: number;
  /** Aborted when the lease is lost (never on release), with the `LEASE_LOST` error as its reason. */
  readonly signal: AbortSignal;
  /** Whether this process may still act on the lease: not lost, not released, its local deadline not passed. */
  readonly held: boolean;
  /**
   * Milliseconds until the local deadline (0 once not held). A write the store cannot fence (a storage profile's upload)
   * is safe only if it ends before the deadline: renew just before it, and do not start it with less time than it takes.
   */
  readonly remainingMs: number;
  /** Extends the lease by `ttlMs` from now. False when it is lost (and then the signal is aborted). */
  renew(): Promise<boolean>;
  /**
   * The publish-step check: resolves when the store confirms this grant is still current and the local deadline has
   * not passed; otherwise the lease is lost and this throws `LEASE_LOST`. Call it just before the step a stale holder
   * must never take (a backup's commit marker, a deletion); where the store itself can refuse the write (a fenced
   * write of the PostgreSQL or Redis store), prefer that: it leaves no window between the check and the write.
   */
  assertHeld(): Promise<void>;
  /** Ends the lease so another holder need not wait for it to expire. Does nothing once lost or released. */
  release(): Promise<void>;
}

/** What `withLease` did: ran the work under the lease, or did not get the lease. */
export type LeaseRun<T> = { readonly held: true; readonly token: number; readonly value: T } | { readonly held: false };

function leaseLost(grant: LeaseGrant, why: string): BackupError {
  return new BackupError('LEASE_LOST', `The lease ${JSON.stringify(grant.name)} (token ${grant.token}) ${why}.`, {
    details: { lease: grant.name, token: grant.token },
  });
}

class StoreLease implements Lease {
  readonly name: string;
  readonly token: number;
  readonly holder: string;
  readonly ttlMs: number;
  readonly #store: LeaseStore;
  readonly #grant: LeaseGrant;
  readonly #lost = new AbortController();
  #state: 'held' | 'released' | 'lost' = 'held';
  #deadline = 0;
  #timer: NodeJS.Timeout | undefined;
  #renewing: Promise<boolean> | undefined;

  constructor(store: LeaseStore, grant: LeaseGrant, ttlMs: number, requestedAt: number) {
    this.#store = store;
    this.#grant = { name: grant.name, token: grant.token, holder: grant.holder };
    this.name = grant.name;
    this.token = grant.token;
    this.holder = grant.holder;
    this.ttlMs = ttlMs;
    this.#extendTo(requestedAt + ttlMs);
  }

  get signal(): AbortSignal {
    return this.#lost.signal;
  }

  get held(): boolean {
    this.#loseIfDue();
    return this.#state === 'held';
  }

  get remainingMs(): number {
    return this.held ? this.#deadline - performance.now() : 0;
  }

  renew(): Promise<boolean> {
    // One renewal at a time: a background renewal and an explicit one share the request.
    this.#renewing ??= this.#renewOnce().finally(() => {
      this.#renewing = undefined;
    });
    return this.#renewing;
  }

  async assertHeld(): Promise<void> {
    this.#throwUnlessHeld();
    if (!(await this.#store.isCurrent(this.#grant)) && this.#state === 'held')
      this.#lose('is held by another holder, or by none, in the store');
    // The answer may have taken longer than the time that was left.
    this.#throwUnlessHeld();
  }

  async release(): Promise<void> {
    if (this.#state !== 'held') return;
    this.#state = 'released';
    clearTimeout(this.#timer);
    await this.#store.release(this.#grant);
  }

  async #renewOnce(): Promise<boolean> {
    if (!this.held) return false;
    const requestedAt = performance.now();
    const renewed = await this.#store.renew(this.#grant, this.ttlMs);
    this.#loseIfDue(); // its time ran out while the store answered: lost is final, whatever the answer
    if (this.#state !== 'held') return false;
    if (!renewed) {
      this.#lose('was not renewed: the store no longer holds it for this holder (it expired, or another took it)');
      return false;
    }
    this.#extendTo(requestedAt + this.ttlMs);
    return this.held;
  }

  #throwUnlessHeld(): void {
    this.#loseIfDue();
    if (this.#state === 'released') throw leaseLost(this.#grant, 'was released');
    if (this.#state === 'lost') throw this.#lost.signal.reason;
  }

  #extendTo(deadline: number): void {
    this.#deadline = deadline;
    this.#watch();
  }

  /**
   * Arms the timer that announces the loss (the signal); `held` and `assertHeld` read the clock themselves. A timer can
   * fire a little before `performance.now()` reaches the deadline (it counts from the event loop's cached time): then
   * it is armed again for what is left.
   */
  #watch(): void {
    clearTimeout(this.#timer);
    this.#loseIfDue();
    if (this.#state !== 'held') return;
    this.#timer = setTimeout(() => this.#watch(), this.#deadline - performance.now() + 1);
    this.#timer.unref();
  }

  #loseIfDue(): void {
    if (this.#state === 'held' && performance.now() >= this.#deadline)
      this.#lose(`ran out of time: not renewed within ${this.ttlMs} ms`);
  }

  #lose(why: string): void {
    if (this.#state !== 'held') return;
    this.#state = 'lost';
    clearTimeout(this.#timer);
    this.#lost.abort(leaseLost(this.#grant, why));
    // A renewal may have reached the store after the local deadline: free the lease rather than leave it to expire.
    this.#store.release(this.#grant).catch(() => undefined);
  }
}

function assertLeaseArguments(name: string, ttlMs: number): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 256)
    throw new BackupError(
      'INVALID_OPTION',
      `Invalid lease name ${JSON.stringify(name)}. Expected a non-empty string of at most 256 characters.`,
      { details: { option: 'name' } },
    );
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_TTL_MS)
    throw new BackupError(
      'INVALID_OPTION',
      `Invalid lease time ${JSON.stringify(ttlMs)}. Expected a whole number of milliseconds from 1 to ${MAX_TTL_MS}.`,
      { details: { option: 'ttlMs' } },
    );
}

/**
 * Takes named leases from a store (default: the process's in-process store). Give every instance of a deployment the
 * same shared store (PostgreSQL or Redis) and the same lease names, and at most one of them holds a name at a time.
 *
 * @example
 * const lock = new LeaseLock(createRedisLeaseStore({ url: 'redis://cache:6379' }));
 * const run = await lock.withLease('koan-backup:retention', 60_000, async (lease) => {
 *   const plan = await planSomething({ signal: lease.signal });
 *   await lease.assertHeld(); // a holder that lost the lease meanwhile stops here
 *   return publish(plan);
 * });
 */
export class LeaseLock {
  readonly #store: LeaseStore;

  constructor(store: LeaseStore = processLeaseStore) {
    this.#store = store;
  }

  get store(): LeaseStore {
    return this.#store;
  }

  /** The lease `name` for `ttlMs`, or undefined when another holder has it. Does not wait. */
  async acquire(name: string, ttlMs: number): Promise<Lease | undefined> {
    assertLeaseArguments(name, ttlMs);
    const requestedAt = performance.now();
    const grant = await this.#store.tryAcquire(name, ttlMs);
    if (!grant) return undefined;
    if (performance.now() - requestedAt >= ttlMs) {
      // The answer took the whole lease time: it is useless here, and nobody else should wait for it.
      await this.#store.release(grant).catch(() => undefined);
      return undefined;
    }
    return new StoreLease(this.#store, grant, ttlMs, requestedAt);
  }

  /**
   * Runs `work` under the lease `name` when it can be taken now, renewing it every third of `ttlMs` meanwhile, and
   * releases it after. `work` should watch `lease.signal` and call `lease.assertHeld()` before publishing: renewal
   * can fail (the store unreachable for the whole lease time), and then the lease is lost while `work` runs.
   */
  async withLease<T>(name: string, ttlMs: number, work: (lease: Lease) => Promise<T>): Promise<LeaseRun<T>> {
    const lease = await this.acquire(name, ttlMs);
    if (!lease) return { held: false };
    // A failed renewal is retried at the next beat; the local deadline ends the lease if none succeeds in time.
    const beat = setInterval(() => void lease.renew().catch(() => undefined), Math.max(1, Math.floor(ttlMs / 3)));
    beat.unref();
    try {
      return { held: true, token: lease.token, value: await work(lease) };
    } finally {
      clearInterval(beat);
      await lease.release().catch(() => undefined);
    }
  }

  close(): Promise<void> {
    return this.#store.close();
  }
}
