import { discoverEntities, type Entity, type EntityInfo, introspectSources, registeredEntities } from '@koan/data';
import { isAbortError, ROOT_SET } from '@koan/data/adapter-kit';
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

/** One discovered entity, with the error of its source when it could not be read. */
export interface Candidate {
  readonly info: Pick<EntityInfo, 'name' | 'provider' | 'source' | 'sets' | 'entity'>;
  /** The provider as configured (`mariadb`), when it differs from the adapter's name (`mysql`). */
  readonly configuredProvider: string;
  readonly unavailable?: Error;
}

/**
 * Every discovered entity of every source, in a stable order (entity name). A source that cannot be reached fails the
 * listing, unless `continueOnError` (on by default) is set: its declared entities are then listed with the error in
 * `unavailable`. Introspection (`introspect`) needs every source it reads.
 */
export async function discoverCandidates(
  context: BackupContext,
  options: { introspect?: boolean; continueOnError?: boolean } = {},
): Promise<Candidate[]> {
  const { runtime } = context;
  if (options.introspect) await introspectSources(runtime);
  const found: Candidate[] = [];
  for (const source of runtime.sourceNames()) {
    const configuredProvider = runtime.sources[source]?.provider ?? 'unknown';
    try {
      for (const info of await discoverEntities({ runtime, sources: [source] }))
        found.push({ info, configuredProvider });
    } catch (e) {
      if (options.continueOnError === false || isAbortError(e)) throw e;
      const error = e instanceof Error ? e : new Error(String(e));
      for (const entity of registeredEntities())
        if (entity.schema.source === source)
          found.push({
            info: {
              name: entity.schema.name,
              provider: configuredProvider,
              source,
              sets: [],
              entity: entity.withRuntime(runtime),
            },
            configuredProvider,
            unavailable: error,
          });
    }
  }
  return found.sort((a, b) => a.info.name.localeCompare(b.info.name));
}

/** The entity sets of `candidate` to back up: those that exist (root when none does yet), or those of `sets`. */
export function targetsOf(candidate: Candidate, sets?: readonly string[]): BackupTarget[] {
  const { info, unavailable } = candidate;
  const existing = info.sets.length ? [...info.sets].sort(setOrder) : [ROOT_SET];
  return (sets ? existing.filter((set) => sets.includes(set)) : existing).map((set) => ({
    entity: info.entity,
    set,
    source: info.source,
    provider: info.provider,
    ...(unavailable ? { unavailable } : {}),
  }));
}

/**
 * Every discovered entity set that passes the filter (and is one of `sets`, when given), in a stable order (entity
 * name, then set). A source that cannot be reached fails the listing, unless `continueOnError` (as in
 * `GlobalBackupOptions`, on by default) is set: its declared entities are then listed once (root set) with the error
 * in `unavailable`. Introspection needs every source it reads. Values of the filter that match nothing are ignored
 * here: `planBackup` refuses them and says what the sources hold that a backup leaves out.
 */
export async function selectTargets(
  context: BackupContext,
  filter: EntityFilter & { introspect?: boolean; continueOnError?: boolean; sets?: readonly string[] },
): Promise<BackupTarget[]> {
  const candidates = await discoverCandidates(context, filter);
  return candidates.filter((c) => matchesFilter(c.info, filter)).flatMap((c) => targetsOf(c, filter.sets));
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
