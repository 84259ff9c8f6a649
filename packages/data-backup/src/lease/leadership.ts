/**
 * Leadership: one instance of a deployment leads (holds a long-lived lease and keeps renewing it), the others keep
 * trying to take it. A scheduler runs its cron jobs only while it leads, so a tick that fires in every instance runs
 * once; when the leader dies (even by SIGKILL, which releases nothing) its lease expires and another instance takes
 * over within the lease time.
 *
 * Why not a lease per run: instances whose clocks differ by more than a run's length would each take the freed lease in
 * turn and run the same tick twice. One leader decides every tick.
 */
import type { Lease, LeaseLock } from './lock.js';

export interface LeadershipOptions {
  /** How long the lease lasts without renewal: the longest wait for a takeover after the leader dies. */
  readonly ttlMs: number;
  /** How often the leader renews. @default a third of `ttlMs` */
  readonly renewEveryMs?: number;
  /** How often a follower tries to take the lease. @default a third of `ttlMs` */
  readonly retryEveryMs?: number;
  /** Called with the lease when this instance starts leading, and with undefined when it stops. */
  readonly onChange?: (lease: Lease | undefined) => void;
  /**
   * Called when the store fails a request (this instance keeps trying; a leader stays one until its deadline). Without
   * it such failures are not reported: a scheduler should pass its own, or an unreachable store silently means no leader.
   */
  readonly onError?: (error: unknown) => void;
}

export class Leadership {
  readonly #lock: LeaseLock;
  readonly #name: string;
  readonly #options: LeadershipOptions;
  #lease: Lease | undefined;
  #timer: NodeJS.Timeout | undefined;
  #step: Promise<void> = Promise.resolve();
  #running = false;

  constructor(lock: LeaseLock, name: string, options: LeadershipOptions) {
    this.#lock = lock;
    this.#name = name;
    this.#options = options;
  }

  /** The lease while this instance leads (checked against the local deadline), else undefined. */
  get lease(): Lease | undefined {
    return this.#lease?.held ? this.#lease : undefined;
  }

  /** Starts trying to lead: the first attempt is made at once. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /** Stops trying, waits for the request in flight and releases the lease if this instance leads. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    await this.#step;
    const lease = this.#lease;
    this.#lease = undefined;
    if (lease?.held) {
      await lease.release().catch((e: unknown) => this.#report(e));
      this.#announce(undefined);
    }
  }

  #schedule(delayMs: number): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      this.#step = this.#beat().then((next) => this.#schedule(next));
    }, delayMs);
    this.#timer.unref();
  }

  /** One beat: a leader renews, a follower tries to acquire. Returns the delay to the next beat. */
  async #beat(): Promise<number> {
    const { ttlMs } = this.#options;
    const renewEvery = this.#options.renewEveryMs ?? Math.max(1, Math.floor(ttlMs / 3));
    const retryEvery = this.#options.retryEveryMs ?? Math.max(1, Math.floor(ttlMs / 3));
    try {
      if (this.#lease) {
        if (await this.#lease.renew()) return renewEvery;
        this.#follow();
      }
      if (!this.#running) return retryEvery;
      const lease = await this.#lock.acquire(this.#name, ttlMs);
      if (!lease) return retryEvery;
      if (!this.#running) {
        await lease.release();
        return retryEvery;
      }
      this.#lease = lease;
      lease.signal.addEventListener('abort', () => this.#follow(lease), { once: true });
      this.#announce(lease);
      return renewEvery;
    } catch (e) {
      this.#report(e);
      // A leader whose time ran out while the store failed is a follower now.
      if (this.#lease && !this.#lease.held) this.#follow();
      return this.#lease ? renewEvery : retryEvery;
    }
  }

  /** This instance no longer leads (its lease was lost): says so once. */
  #follow(lease: Lease | undefined = this.#lease): void {
    if (!lease || this.#lease !== lease) return;
    this.#lease = undefined;
    this.#announce(undefined);
  }

  // The callbacks run inside timers and abort events: what they throw must not stop the beats or crash the process.
  #announce(lease: Lease | undefined): void {
    try {
      this.#options.onChange?.(lease);
    } catch (e) {
      this.#report(e);
    }
  }

  #report(error: unknown): void {
    try {
      this.#options.onError?.(error);
    } catch (e) {
      console.error('[koan-backup] onError threw while reporting a lease store failure:', e);
    }
  }
}
