/**
 * What a whole-application backup takes, and what it leaves out: every table of the sources is either backed up, left
 * out on request (recorded in the manifest's `omitted` with why), or the backup fails before reading anything, naming
 * it. The one rule of the library, the CLI and the HTTP API.
 */
import { type EntitySchema, introspectSources, type SourcesIntrospection } from '@koan/data';
import { type NotDataObject, type SkippedTable, throwIfAborted } from '@koan/data/adapter-kit';
import type { BackupContext } from './context.js';
import { BackupError } from './errors.js';
import type { OmittedObject } from './manifest.js';
import { type BackupTarget, type Candidate, discoverCandidates, type EntityFilter, targetsOf } from './select.js';

/** What {@link planBackup} reads. */
export interface BackupPlanOptions extends EntityFilter {
  /** Also back up tables of the sources that no code declares (introspection). Default false. */
  readonly introspect?: boolean;
  /** Only these sets of the entities (default: every set that exists). */
  readonly sets?: readonly string[];
  readonly signal?: AbortSignal;
}

/** The entity sets a backup reads, and what the sources hold that it leaves out (with why). */
export interface BackupPlan {
  readonly targets: BackupTarget[];
  readonly omitted: OmittedObject[];
}

type Skipped = SkippedTable & { readonly source: string };
type NotData = NotDataObject & { readonly source: string };

/** Option lists that select by entity, and those that select by provider. */
const ENTITY_OPTIONS = ['includeEntityTypes', 'excludeEntityTypes'] as const;
const PROVIDER_OPTIONS = ['includeProviders', 'excludeProviders'] as const;
const CONFIG_EXCLUDES = 'Koan.Backup.ExcludeEntities';

const lower = (x: string) => x.toLowerCase();

/** The names an entity answers to in a selection (lower case): its name, its table, and `namespace.table`. */
export function selectionNames(schema: Pick<EntitySchema, 'name' | 'table' | 'namespace'>): string[] {
  const table = schema.table ?? schema.name;
  return [schema.name, table, ...(schema.namespace ? [`${schema.namespace}.${table}`] : [])].map(lower);
}

const entityNames = (c: Candidate) => selectionNames(c.info.entity.schema);

/** Why `Koan.Backup.ExcludeEntities` leaves out an object answering to `names` (lower case), if it does. */
export function configExclusion(context: BackupContext, names: readonly string[]): string | undefined {
  return matches(context.config.excludeEntities, names) ? `excluded by ${CONFIG_EXCLUDES}` : undefined;
}

function matches(values: readonly string[] | undefined, names: readonly string[]): boolean {
  return values?.some((v) => names.includes(lower(v))) ?? false;
}

/** A caller's list option: an array of non-empty strings, or absent. */
function listOption(options: BackupPlanOptions, option: keyof EntityFilter): readonly string[] | undefined {
  const value: unknown = options[option];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || !v.trim()))
    throw new BackupError(
      'INVALID_OPTION',
      `Invalid option ${option}: ${JSON.stringify(value)}. Expected an array of non-empty strings.`,
      { details: { option } },
    );
  return value.map((v: string) => v.trim());
}

/**
 * Refuses a selection value that matches nothing the sources hold: a typo must neither back up nothing nor back up
 * what the caller meant to leave out.
 */
function refuseUnmatched(
  option: string,
  values: readonly string[] | undefined,
  known: readonly string[],
  alsoMatching: readonly string[] = [],
): void {
  const names = new Set([...known, ...alsoMatching].map(lower));
  const unknown = (values ?? []).filter((v) => !names.has(lower(v)));
  if (!unknown.length) return;
  const what = option.endsWith('Providers') ? 'provider of any discovered entity' : 'discovered entity or table';
  throw new BackupError(
    'INVALID_OPTION',
    `Invalid option ${option}: ${unknown.map((v) => JSON.stringify(v)).join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not the name of a ${what}. Known: ${known.join(', ') || '(none)'}.`,
    { details: { option, unknown, known } },
  );
}

/**
 * The targets of a whole-application backup and what it leaves out, checked before anything is read:
 * - a selection value (`includeEntityTypes`, `excludeEntityTypes`, `includeProviders`, `excludeProviders`) that
 *   matches no entity, table or provider is `INVALID_OPTION`, naming the option and the known values;
 * - a table introspection could not read (`skipped`) that is not excluded fails with `TABLES_NOT_BACKED_UP`, naming
 *   each table, its source and why, and how to exclude it;
 * - what is left out is returned in `omitted`, with the reason: entities and tables excluded (by the options or by
 *   `Koan.Backup.ExcludeEntities`) or not selected, and objects that hold no data of their own (views...);
 * - nothing left to back up is `NOTHING_TO_BACK_UP`.
 *
 * Entity names match case-insensitively by entity name, table or `namespace.table`. `Koan.Backup.ExcludeEntities`
 * applies to every whole-application backup of the app (a `--source` backup of another database too), so an entry
 * that matches nothing there is not an error. A source that cannot be reached does not fail the plan: its declared
 * entities are targets carrying the error in `unavailable` (the backup records them as failed); introspecting it does.
 */
export async function planBackup(context: BackupContext, options: BackupPlanOptions = {}): Promise<BackupPlan> {
  throwIfAborted(options.signal);
  const lists = Object.fromEntries(
    [...ENTITY_OPTIONS, ...PROVIDER_OPTIONS].map((o) => [o, listOption(options, o)]),
  ) as Record<keyof EntityFilter, readonly string[] | undefined>;
  const found: SourcesIntrospection = options.introspect
    ? await introspectSources(context.runtime)
    : { entities: [], skipped: [], notData: [] };
  const candidates = await discoverCandidates(context, { continueOnError: true });
  throwIfAborted(options.signal);
  const providersOf = (c: { info: { provider: string }; configuredProvider: string }) => [
    lower(c.info.provider),
    lower(c.configuredProvider),
  ];
  const skippedProvider = (s: Skipped) => {
    const configured = context.runtime.sources[s.source]?.provider ?? '';
    const seen = candidates.find((c) => c.info.source === s.source)?.info.provider ?? configured;
    return [lower(seen), lower(configured)];
  };
  const knownEntities = [...new Set([...candidates.map((c) => c.info.name), ...found.skipped.map((s) => s.table)])];
  const knownProviders = [
    ...new Set([...candidates.flatMap(providersOf), ...found.skipped.flatMap(skippedProvider)].filter(Boolean)),
  ].sort();
  // An entity also answers to its table's name; the message lists entity names (and tables introspection skipped).
  const tables = candidates.flatMap((c) => entityNames(c).slice(1));
  for (const option of ENTITY_OPTIONS) refuseUnmatched(option, lists[option], knownEntities, tables);
  // A provider is known by its adapter's name and by its configured one (mariadb for mysql).
  for (const option of PROVIDER_OPTIONS) refuseUnmatched(option, lists[option], knownProviders);

  // An explicit exclusion is the most specific reason, so it is named first.
  /** Why an object named `names`, of providers `providers`, is left out; undefined when it is backed up. */
  const leftOut = (names: string[], providers: string[]): string | undefined => {
    if (matches(lists.excludeEntityTypes, names)) return 'excluded on request (excludeEntityTypes)';
    if (matches(lists.excludeProviders, providers)) return 'excluded on request (excludeProviders)';
    const configured = configExclusion(context, names);
    if (configured) return configured;
    if (lists.includeProviders && !matches(lists.includeProviders, providers)) return 'not selected (includeProviders)';
    if (lists.includeEntityTypes && !matches(lists.includeEntityTypes, names))
      return 'not selected (includeEntityTypes)';
    return undefined;
  };
  const targets: BackupTarget[] = [];
  const omitted: OmittedObject[] = [];
  for (const c of candidates) {
    const why = leftOut(entityNames(c), providersOf(c));
    if (why) omitted.push({ source: c.info.source, name: c.info.name, kind: 'entity', reason: why });
    else targets.push(...targetsOf(c, options.sets));
  }
  const blocking: Skipped[] = [];
  for (const s of found.skipped) {
    const why = leftOut([lower(s.table)], skippedProvider(s));
    if (why) omitted.push({ source: s.source, name: s.table, kind: 'table', reason: `${why}; ${s.reason}` });
    else blocking.push(s);
  }
  if (blocking.length) throw tablesNotBackedUp(blocking);
  omitted.push(...found.notData.map(notDataOmitted));
  if (!targets.length) throw nothingToBackUp(context, candidates, options);
  return { targets, omitted };
}

function notDataOmitted(n: NotData): OmittedObject {
  return { source: n.source, name: n.name, kind: n.kind, reason: n.note };
}

function tablesNotBackedUp(tables: readonly Skipped[]): BackupError {
  const lines = tables.map((s) => `- ${s.table} (source ${s.source}): ${s.reason}`);
  const example = tables[0]!.table;
  return new BackupError(
    'TABLES_NOT_BACKED_UP',
    `${tables.length} table${tables.length === 1 ? '' : 's'} cannot be backed up, so nothing was (a backup never leaves a table out silently):\n${lines.join('\n')}\nTo back up the rest, exclude ${tables.length === 1 ? 'it' : 'each one'} explicitly (the manifest then lists it as omitted, with the reason): --exclude-entity ${example} on the command line, excludeEntityTypes: ['${example}'] in code, or "${example}" in Koan.Backup.ExcludeEntities in koan.config.json.`,
    { details: { tables: tables.map((s) => ({ source: s.source, table: s.table, reason: s.reason })) } },
  );
}

function nothingToBackUp(
  context: BackupContext,
  candidates: readonly Candidate[],
  options: BackupPlanOptions,
): BackupError {
  const discovered = candidates.map((c) => ({ name: c.info.name, provider: c.info.provider, source: c.info.source }));
  const sources = context.runtime.sourceNames();
  if (!candidates.length)
    return new BackupError(
      'NOTHING_TO_BACK_UP',
      `No entity was discovered in source${sources.length === 1 ? '' : 's'} ${sources.join(', ')}: define entities with defineEntity (and import their modules before backing up)${options.introspect ? '' : ', or introspect the sources to back up the tables no code declares'}.`,
      { details: { discovered, sources } },
    );
  return new BackupError(
    'NOTHING_TO_BACK_UP',
    `No entity set matches the selection (entities, providers, sets): everything discovered (${discovered.map((d) => `${d.name} (${d.provider})`).join(', ')}) is excluded or not selected${options.sets ? `, or has none of the sets ${options.sets.join(', ')}` : ''}.`,
    { details: { discovered, sources, ...(options.sets ? { sets: options.sets } : {}) } },
  );
}
