/**
 * The lease store contract: the few atomic operations on shared state that a lease backend implements (in-process
 * here; PostgreSQL in `@koan/data-postgres/lease`, Redis in `@koan/data-redis/lease`), and the in-process store, the
 * default. Backends implement it structurally (they may not import this package: see the package layers), so it holds
 * only plain data and promises.
 *
 * The holder's side (local deadlines, renewal, the signal that says a lease was lost) is `LeaseLock` in lock.ts, the
 * same for every store.
 */
import { randomUUID } from 'node:crypto';

/** One grant of a named lease by a store. */
export interface LeaseGrant {
  readonly name: string;
  /**
   * The fencing token: greater than the token of every earlier grant of `name` by the same store, forever (a released
   * or expired lease does not reset it). A resource that remembers the highest token it accepted can refuse a stale
   * holder's late write.
   */
  readonly token: number;
  /** The holder's secret, unique to this grant: renewal and release compare it, so nobody else's grant is touched. */
  readonly holder: string;
}

/**
 * What a lease backend implements. Every operation is atomic on the store, and expiry is judged by the store's clock,
 * counted from when the request reached it (so never earlier than the holder's own count, which starts before sending).
 */
export interface LeaseStore {
  /** Grants `name` for `ttlMs` when no unexpired grant holds it; undefined when one does. */
  tryAcquire(name: string, ttlMs: number): Promise<LeaseGrant | undefined>;
  /**
   * Extends `grant` to `ttlMs` from now when it is still the current, unexpired grant of its name; false otherwise. An
   * expired grant is never renewed, even when nobody took the lease meanwhile: its holder has already stopped.
   */
  renew(grant: LeaseGrant, ttlMs: number): Promise<boolean>;
  /** Ends `grant` when it is still current, so the next acquirer need not wait; a stale grant's release does nothing. */
  release(grant: LeaseGrant): Promise<void>;
  /** Whether `grant` is the current, unexpired grant of its name. */
  isCurrent(grant: LeaseGrant): Promise<boolean>;
  /** Closes the store's connections (a store given an existing client or pool leaves it open). */
  close(): Promise<void>;
}

interface InProcessGrant {
  readonly token: number;
  readonly holder: string;
  expiresAt: number;
}

/**
 * Leases among the callers of one process: the default store, enough for a single instance. Time is the monotonic
 * `performance.now()`. A name's entry outlives its grants, so its tokens keep increasing.
 */
export class InProcessLeaseStore implements LeaseStore {
  readonly #grants = new Map<string, InProcessGrant>();

  async tryAcquire(name: string, ttlMs: number): Promise<LeaseGrant | undefined> {
    const now = performance.now();
    const current = this.#grants.get(name);
    if (current && current.expiresAt > now) return undefined;
    const grant = { name, token: (current?.token ?? 0) + 1, holder: randomUUID() };
    this.#grants.set(name, { token: grant.token, holder: grant.holder, expiresAt: now + ttlMs });
    return grant;
  }

  async renew(grant: LeaseGrant, ttlMs: number): Promise<boolean> {
    const current = this.#current(grant);
    if (current) current.expiresAt = performance.now() + ttlMs;
    return current !== undefined;
  }

  async release(grant: LeaseGrant): Promise<void> {
    const current = this.#current(grant);
    if (current) current.expiresAt = Number.NEGATIVE_INFINITY;
  }

  async isCurrent(grant: LeaseGrant): Promise<boolean> {
    return this.#current(grant) !== undefined;
  }

  async close(): Promise<void> {}

  #current(grant: LeaseGrant): InProcessGrant | undefined {
    const current = this.#grants.get(grant.name);
    return current &&
      current.token === grant.token &&
      current.holder === grant.holder &&
      current.expiresAt > performance.now()
      ? current
      : undefined;
  }
}

/** The store a `LeaseLock` uses when given none: one per process, so every lock of the process excludes the others. */
export const processLeaseStore: LeaseStore = new InProcessLeaseStore();
