import {
  discoverEntities,
  type Entity,
  type EntityInfo,
  introspectSources,
  isAbortError,
  ROOT_SET,
  registeredEntities,
} from '@koan/data';
import type { BackupContext } from './context.js';

/** One entity set to back up. */
export interface BackupTarget {
  readonly entity: Entity;
  readonly set: string;
  readonly source: string;
  readonly provider: string;
  /**
   * Why the source could not be read when the targets were listed (it could not be connected to). A backup with
   * `continueOnError` records such an entity as failed with this error; without it, the backup fails with it.
   */
  readonly unavailable?: Error;
}

export interface EntityFilter {
  /** Only entities of these providers (`sqlite`, `postgres`...). */
  readonly includeProviders?: readonly string[];
  readonly excludeProviders?: readonly string[];
  /** Only these entity names. */
  readonly includeEntityTypes?: readonly string[];
  readonly excludeEntityTypes?: readonly string[];
}

const norm = (xs: readonly string[] | undefined) => (xs ? new Set(xs.map((x) => x.toLowerCase())) : undefined);

export function matchesFilter(info: { name: string; provider: string }, filter: EntityFilter): boolean {
  const incP = norm(filter.includeProviders);
  const excP = norm(filter.excludeProviders);
  const incE = norm(filter.includeEntityTypes);
  const excE = norm(filter.excludeEntityTypes);
  const provider = info.provider.toLowerCase();
  const name = info.name.toLowerCase();
  if (incP && !incP.has(provider)) return false;
  if (excP?.has(provider)) return false;
  if (incE && !incE.has(name)) return false;
  if (excE?.has(name)) return false;
  return true;
}

/**
 * Every discovered entity set that passes the filter (and is one of `sets`, when given), in a stable order (entity
 * name, then set). A source that cannot
 * be reached fails the listing, unless `continueOnError` (as in `GlobalBackupOptions`, on by default) is set: its
 * declared entities are then listed once (root set) with the error in `unavailable`. Introspection needs every
 * source it reads.
 */
export async function selectTargets(
  context: BackupContext,
  filter: EntityFilter & { introspect?: boolean; continueOnError?: boolean; sets?: readonly string[] },
): Promise<BackupTarget[]> {
  const { runtime } = context;
  if (filter.introspect) await introspectSources(runtime);
  const found: { info: Pick<EntityInfo, 'name' | 'provider' | 'source' | 'sets' | 'entity'>; unavailable?: Error }[] =
    [];
  for (const source of runtime.sourceNames()) {
    try {
      for (const info of await discoverEntities({ runtime, sources: [source] })) found.push({ info });
    } catch (e) {
      if (filter.continueOnError === false || isAbortError(e)) throw e;
      const provider = runtime.sources[source]?.provider ?? 'unknown';
      const error = e instanceof Error ? e : new Error(String(e));
      for (const entity of registeredEntities())
        if (entity.schema.source === source)
          found.push({
            info: { name: entity.schema.name, provider, source, sets: [], entity: entity.withRuntime(runtime) },
            unavailable: error,
          });
    }
  }
  found.sort((a, b) => a.info.name.localeCompare(b.info.name));
  const out: BackupTarget[] = [];
  for (const { info, unavailable } of found) {
    if (!matchesFilter(info, filter)) continue;
    const existing = info.sets.length ? [...info.sets].sort(setOrder) : [ROOT_SET];
    const sets = filter.sets ? existing.filter((set) => filter.sets!.includes(set)) : existing;
    for (const set of sets)
      out.push({
        entity: info.entity,
        set,
        source: info.source,
        provider: info.provider,
        ...(unavailable ? { unavailable } : {}),
      });
  }
  return out;
}

export function setOrder(a: string, b: string): number {
  if (a === b) return 0;
  if (a === ROOT_SET) return -1;
  if (b === ROOT_SET) return 1;
  return a < b ? -1 : 1;
}

/** Runs `fn` over `items` with at most `limit` in flight; resolves when all are done (first error rejects after all settle). */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failure) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.error;
}
