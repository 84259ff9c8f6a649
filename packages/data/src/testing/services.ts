/**
 * Service gating for tests that need a real server. Each service URL comes from an env var with a
 * loopback default. Outside CI a service that does not answer skips its tests with a message;
 * with `CI=true` it fails them instead, so CI can never go green by skipping.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const serviceUrls = Object.freeze({
  postgres: process.env.KOAN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  mysql: process.env.KOAN_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
  redis: process.env.KOAN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
});

export const inCI = process.env.CI === 'true' || process.env.CI === '1';

/**
 * Probes a service once. Returns `undefined` when it answers, otherwise the reason to skip.
 * In CI an unreachable service throws, failing the suite.
 */
export async function probeService(name: string, probe: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await probe();
    return undefined;
  } catch (e) {
    const reason = `${name} is not reachable (${(e as Error).message}); set the KOAN_TEST_* URL or start it`;
    if (inCI) throw new Error(`CI=true and ${reason}`);
    console.warn(`[koan tests] skipping ${name} tests: ${reason}`);
    return reason;
  }
}

/**
 * The shared datasets folder (`../shared/datasets` beside the repository), or undefined with a
 * console message when it is absent (a user's clone). In CI its absence is an error.
 */
export function sharedDatasetsDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  let dir = here;
  for (let i = 0; i < 8; i++) {
    const candidate = resolve(dir, '../shared/datasets');
    if (existsSync(candidate)) return candidate;
    dir = resolve(dir, '..');
  }
  const env = process.env.KOAN_SHARED_DATASETS;
  if (env && existsSync(env)) return env;
  if (inCI) throw new Error('CI=true but ../shared/datasets was not found beside the repository');
  console.warn(
    '[koan tests] ../shared/datasets is absent: dataset tests (Chinook) are skipped. Set KOAN_SHARED_DATASETS to run them.',
  );
  return undefined;
}

/**
 * Starts `start(signal)` (an export or a transaction, say, that waits on a lock held elsewhere), aborts it after
 * `abortAfterMs`, and returns what happened within `giveUpAfterMs`: the error it failed with, `'a chunk arrived'`
 * (an iterable yielded), `'ended'` (it finished), or `'still waiting'` when the abort did not reach it.
 */
export async function abortWhileWaiting(
  start: (signal: AbortSignal) => AsyncIterable<unknown> | Promise<unknown>,
  { abortAfterMs = 200, giveUpAfterMs = 5_000 } = {},
): Promise<unknown> {
  const controller = new AbortController();
  const outcome = (async () => {
    const started = start(controller.signal);
    if (started instanceof Promise) {
      await started;
      return 'ended';
    }
    for await (const _ of started) return 'a chunk arrived';
    return 'ended';
  })().catch((e: unknown) => e);
  const abort = setTimeout(() => controller.abort(), abortAfterMs);
  let giveUp: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      outcome,
      new Promise((resolve) => {
        giveUp = setTimeout(() => resolve('still waiting'), giveUpAfterMs);
      }),
    ]);
  } finally {
    clearTimeout(abort);
    clearTimeout(giveUp);
  }
}
