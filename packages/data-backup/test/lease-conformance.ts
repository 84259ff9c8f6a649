/**
 * The conformance suite of lease stores (`LeaseStore` of `@koan/data-backup/lease`): every backend (in-process,
 * PostgreSQL, Redis) runs the same cases through `LeaseLock`. Names are unique to each case; waits for an expiry poll
 * with a generous bound instead of sleeping an exact time.
 */
import { randomBytes } from 'node:crypto';
import { type LeaseGrant, LeaseLock, type LeaseStore } from '@koan/data-backup/lease';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

export interface LeaseStoreHarness {
  readonly store: LeaseStore;
  /** The backend's fenced write: appends `value` to the list of `grant.name` only while `grant` is current. */
  fencedWrite?(grant: LeaseGrant, value: string): Promise<void>;
  /** The values fenced writes appended for `name`, in order. */
  fencedWrites?(name: string): Promise<string[]>;
  close(): Promise<void>;
}

/** Polls `check` until it returns a value other than undefined; fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const giveUpAt = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > giveUpAt) throw new Error(`nothing came within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const uniqueName = (what: string) => `conformance-${what}-${randomBytes(4).toString('hex')}`;

/**
 * The conformance cases for the store `open` gives: skipped with `skip` as the reason when it is set; the fenced-write
 * case only with `fenced` (a store whose harness has `fencedWrite`).
 */
export function describeLeaseStore(
  label: string,
  { skip, fenced = false }: { skip: string | undefined; fenced?: boolean },
  open: () => Promise<LeaseStoreHarness>,
): void {
  describe(`lease store conformance: ${label}`, () => {
    let harness: LeaseStoreHarness | undefined;
    let lock: LeaseLock;
    beforeAll(async () => {
      if (skip) return;
      harness = await open();
      lock = new LeaseLock(harness.store);
    });
    afterAll(async () => {
      await harness?.close();
    });
    const test = (name: string, body: () => Promise<void>) =>
      it(name, async (ctx) => {
        if (skip || !harness) return ctx.skip(skip ?? `${label} is unavailable`);
        await body();
      });

    test('grants a name to one holder at a time, and a released name to the next with a greater token', async () => {
      const name = uniqueName('one');
      const first = (await lock.acquire(name, 60_000))!;
      expect(first.held).toBe(true);
      expect(await lock.acquire(name, 60_000)).toBeUndefined();
      await first.release();
      expect(first.held).toBe(false);
      const second = (await lock.acquire(name, 60_000))!;
      expect(second.token).toBeGreaterThan(first.token);
      await second.release();
      const third = (await lock.acquire(name, 60_000))!;
      expect(third.token).toBeGreaterThan(second.token);
      await third.release();
    });

    test('among concurrent acquirers exactly one wins', async () => {
      const name = uniqueName('race');
      const leases = await Promise.all(
        Array.from({ length: 8 }, () => new LeaseLock(harness!.store).acquire(name, 60_000)),
      );
      const won = leases.filter((l) => l !== undefined);
      expect(won).toHaveLength(1);
      await won[0]!.release();
    });

    test('names are independent', async () => {
      const a = (await lock.acquire(uniqueName('a'), 60_000))!;
      const b = (await lock.acquire(uniqueName('b'), 60_000))!;
      expect(a.held && b.held).toBe(true);
      await Promise.all([a.release(), b.release()]);
    });

    test('an expired lease goes to the next holder; the stale one learns it lost and cannot renew, assert or release', async () => {
      const name = uniqueName('expiry');
      const stale = (await lock.acquire(name, 400))!;
      const next = await eventually(() => lock.acquire(name, 60_000));
      expect(next.token).toBeGreaterThan(stale.token);
      await eventually(async () => (stale.signal.aborted ? true : undefined));
      expect(stale.held).toBe(false);
      expect(stale.signal.reason).toMatchObject({ code: 'LEASE_LOST' });
      expect(await stale.renew()).toBe(false);
      await expect(stale.assertHeld()).rejects.toMatchObject({ code: 'LEASE_LOST' });
      await stale.release();
      await harness!.store.release(stale); // even straight to the store: the grant is not the current one
      expect(await lock.acquire(name, 60_000)).toBeUndefined();
      await next.assertHeld();
      await next.release();
    });

    test('a renewed lease outlives its first time', async () => {
      const name = uniqueName('renew');
      const lease = (await lock.acquire(name, 60_000))!;
      expect(await lease.renew()).toBe(true);
      expect(lease.remainingMs).toBeGreaterThan(0);
      expect(lease.remainingMs).toBeLessThanOrEqual(60_000);
      await lease.release();
      expect(lease.remainingMs).toBe(0);
      const grant = (await harness!.store.tryAcquire(name, 300))!;
      expect(await harness!.store.renew(grant, 60_000)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(await harness!.store.isCurrent(grant)).toBe(true);
      expect(await lock.acquire(name, 60_000)).toBeUndefined();
      await harness!.store.release(grant);
    });

    test('an expired grant is not renewed, even when nobody took the lease meanwhile', async () => {
      const name = uniqueName('late-renew');
      const grant = (await harness!.store.tryAcquire(name, 100))!;
      await eventually(async () => ((await harness!.store.isCurrent(grant)) ? undefined : true));
      expect(await harness!.store.renew(grant, 60_000)).toBe(false);
      const next = (await lock.acquire(name, 60_000))!;
      expect(next.token).toBeGreaterThan(grant.token);
      await next.release();
    });

    test('assertHeld passes for the holder and throws LEASE_LOST after release', async () => {
      const lease = (await lock.acquire(uniqueName('assert'), 60_000))!;
      await lease.assertHeld();
      await lease.release();
      await expect(lease.assertHeld()).rejects.toMatchObject({ code: 'LEASE_LOST' });
      expect(lease.signal.aborted).toBe(false); // released, not lost
    });

    test('withLease runs the work under the lease and releases it after; a second caller does not run', async () => {
      const name = uniqueName('with');
      let inner: Awaited<ReturnType<LeaseLock['withLease']>> | undefined;
      const outer = await lock.withLease(name, 60_000, async (lease) => {
        inner = await lock.withLease(name, 60_000, async () => 'second');
        await lease.assertHeld();
        return 'first';
      });
      expect(outer).toMatchObject({ held: true, value: 'first' });
      expect(inner).toEqual({ held: false });
      const after = (await lock.acquire(name, 60_000))!;
      expect(after.token).toBeGreaterThan((outer as { token: number }).token);
      await after.release();
    });

    if (fenced)
      test('the fenced write of the holder is accepted, a superseded holder’s refused', async () => {
        const { fencedWrite, fencedWrites } = harness!;
        if (!fencedWrite || !fencedWrites) throw new Error(`the ${label} harness has no fenced write`);
        const name = uniqueName('fence');
        const stale = (await harness!.store.tryAcquire(name, 60_000))!;
        await fencedWrite.call(harness, stale, 'stale-in-time');
        // Its last renewal was too short (a holder that paused): the lease expires and goes to the next holder.
        expect(await harness!.store.renew(stale, 1)).toBe(true);
        const next = await eventually(() => lock.acquire(name, 60_000));
        // The stale holder never looked at its lease: the store refuses its write all the same.
        await expect(fencedWrite.call(harness, stale, 'stale-too-late')).rejects.toMatchObject({ code: 'LEASE_LOST' });
        await fencedWrite.call(harness, next, 'next');
        await next.release();
        await expect(fencedWrite.call(harness, next, 'next-released')).rejects.toMatchObject({ code: 'LEASE_LOST' });
        expect(await fencedWrites.call(harness, name)).toEqual(['stale-in-time', 'next']);
      });
  });
}
