/**
 * What a backup of the application (or of a database, by introspection) would take: the one description the CLI's
 * `entities` command and the HTTP API's `GET /entities` render.
 */
import { discoverEntities, introspectSources, type SourcesIntrospection } from '@koan/data';
import type { KeyType } from '@koan/data/adapter-kit';
import type { BackupContext } from './context.js';
import { configExclusion, selectionNames } from './plan.js';

/** One discovered entity, with its record count in every set it has. */
export interface EntityDescription {
  readonly name: string;
  readonly source: string;
  readonly provider: string;
  /** `declared` in code, or `introspected` from an existing table. */
  readonly origin: 'declared' | 'introspected';
  /** The table (`namespace.table` outside the source's default namespace). */
  readonly table: string;
  /** The key field (the first of `keyFields` for a composite key; empty for a table without a primary key). */
  readonly key: string;
  /** Every field of a composite key, in order. */
  readonly keyFields?: readonly string[];
  readonly keyType: KeyType;
  /** A table without a primary key: backed up whole, restored by insert. */
  readonly keyless?: boolean;
  readonly fields: number;
  readonly sets: readonly string[];
  /** Records per set. */
  readonly records: Readonly<Record<string, number>>;
  readonly totalRecords: number;
  /** Why whole-application backups leave it out (`Koan.Backup.ExcludeEntities`), if they do. */
  readonly excluded?: string;
}

/** Everything {@link describeEntities} found. */
export interface EntitiesDescription {
  /** The configured sources, in order. */
  readonly sources: readonly string[];
  readonly entities: readonly EntityDescription[];
  /**
   * Tables introspection could not read, with why: a backup fails naming them unless they are excluded (`excluded`
   * says when `Koan.Backup.ExcludeEntities` does). Only with `introspect`.
   */
  readonly skipped: readonly (SourcesIntrospection['skipped'][number] & { readonly excluded?: string })[];
  /** Views and other objects that hold no data of their own, with a note. Only with `introspect`. */
  readonly notData: SourcesIntrospection['notData'];
}

/**
 * Every entity discovered in the configured sources (with `introspect`, also the tables no code declares, the tables
 * that cannot be backed up and the objects that are not data), each with its sets and record counts. A source that
 * cannot be reached fails the description with its error.
 */
export async function describeEntities(
  context: BackupContext,
  options: { readonly introspect?: boolean } = {},
): Promise<EntitiesDescription> {
  const { runtime } = context;
  const found = options.introspect ? await introspectSources(runtime) : { skipped: [], notData: [] };
  const entities: EntityDescription[] = [];
  for (const info of await discoverEntities({ runtime })) {
    const { schema } = info;
    const adapter = await runtime.adapter(info.source);
    const sets = info.sets.length ? [...info.sets] : ['root'];
    const records: Record<string, number> = {};
    for (const set of sets) records[set] = await adapter.count(schema, set);
    const table = schema.table ?? schema.name;
    const excluded = configExclusion(context, selectionNames(schema));
    entities.push({
      name: info.name,
      source: info.source,
      provider: info.provider,
      origin: schema.origin,
      table: schema.namespace ? `${schema.namespace}.${table}` : table,
      key: schema.key,
      ...(schema.keyFields && schema.keyFields.length > 1 ? { keyFields: [...schema.keyFields] } : {}),
      keyType: schema.keyType,
      ...(schema.keyless ? { keyless: true } : {}),
      fields: Object.keys(schema.fields).length,
      sets,
      records,
      totalRecords: Object.values(records).reduce((a, b) => a + b, 0),
      ...(excluded ? { excluded } : {}),
    });
  }
  const skipped = found.skipped.map((s) => {
    const excluded = configExclusion(context, [s.table.toLowerCase()]);
    return excluded ? { ...s, excluded } : s;
  });
  return { sources: runtime.sourceNames(), entities, skipped, notData: found.notData };
}
