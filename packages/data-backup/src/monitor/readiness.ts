/**
 * Readiness: can every storage profile be listed right now? One listing request per profile (the first page of one
 * object), all at once, each bounded by a time limit: what a readiness probe (`GET /readyz`) needs, without reading
 * any backup record.
 */
import { KoanError } from '@koan/data';
import type { BackupContext } from '../context.js';

export interface ProfileReadiness {
  readonly profile: string;
  readonly ready: boolean;
  /** Why not: the failure's stable code (`TRANSIENT`, `ACCESS_DENIED`, `NOT_FOUND`, `TIMEOUT`...). */
  readonly code?: string;
  readonly message?: string;
}

export interface ReadinessResult {
  /** Every profile answered. */
  readonly ready: boolean;
  readonly checkedAt: string;
  readonly profiles: readonly ProfileReadiness[];
}

export interface ReadinessOptions {
  /** Time each profile has to answer. @default 10000 */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

async function probe(
  context: BackupContext,
  profile: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<ProfileReadiness> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  try {
    const driver = context.storage.get(profile);
    for await (const _ of driver.list('', { signal: combined, pageSize: 1 })) break;
    return { profile, ready: true };
  } catch (e) {
    if (signal?.aborted) throw e;
    if (timeout.aborted)
      return { profile, ready: false, code: 'TIMEOUT', message: `listing did not answer within ${timeoutMs} ms` };
    const code = e instanceof KoanError ? e.code : 'ERROR';
    return { profile, ready: false, code, message: e instanceof Error ? e.message : String(e) };
  }
}

/** Whether each configured storage profile can be listed; ready when all can. Cancellation through `signal` throws. */
export async function checkReadiness(context: BackupContext, options: ReadinessOptions = {}): Promise<ReadinessResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new KoanError('INVALID_OPTION', `Invalid option timeoutMs: ${timeoutMs}. Expected a positive number.`, {
      details: { option: 'timeoutMs' },
    });
  const names = [...new Set([context.profileName(), ...context.storage.names()])];
  const profiles = await Promise.all(names.map((p) => probe(context, p, timeoutMs, options.signal)));
  return { ready: profiles.every((p) => p.ready), checkedAt: new Date().toISOString(), profiles };
}
