/**
 * Which archived entity sets a restore takes, and where each goes: the one rule of the library, the CLI and the HTTP
 * API (none of them carries a copy).
 */
import { type DataRuntime, Entity, type EntitySchema, type FieldsShape, getEntity } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import type { BackupContext } from './context.js';
import { BackupError } from './errors.js';
import type { BackupManifest, EntityManifest } from './manifest.js';
import type { SchemaSnapshot } from './verify.js';

/** Where a restore writes the archived entities. */
export interface RestoreTargetOptions {
  /** Restore every entity into this set (default: each into its archived set). */
  readonly targetSet?: string;
  /** Per-entity target set: `{ User: 'staging' }`; wins over `targetSet`. */
  readonly setMap?: Readonly<Record<string, string>>;
  /**
   * Restore into this configured source: the archived schema of each entity (its table, namespace, key fields, a
   * keyless table...) in that source. Default: the entity this application declares under that name (in its own
   * source), else the archived source when this application configures one of that name.
   */
  readonly targetSource?: string;
}

/** An archived entity set, and the entity (bound to the context's runtime) and set it is restored into. */
export interface RestoreTarget {
  readonly entity: Entity;
  readonly targetSet: string;
}

/**
 * The entity an archived schema describes, living in `source` of `runtime`: every part of the schema is kept (its
 * table and namespace, a composite key's `keyFields`, a keyless table), only the source changes. Nothing is registered
 * in the process-wide entity registry.
 */
export function archivedEntity(schema: EntitySchema, source: string, runtime: DataRuntime): Entity {
  const rebuilt = buildSchema(
    {
      name: schema.name,
      fields: schema.fields,
      source,
      ...(schema.keyless ? { keyless: true } : { key: schema.key }),
      ...(schema.keyFields ? { keyFields: schema.keyFields } : {}),
      ...(schema.table ? { table: schema.table } : {}),
      ...(schema.namespace ? { namespace: schema.namespace } : {}),
    },
    schema.origin ?? 'introspected',
  );
  return new Entity(rebuilt, {} as FieldsShape, runtime);
}

/**
 * Where an archived entity set is restored, or `undefined` when this application has nowhere to put it:
 * - the entity this application declares (`defineEntity`) under that name, in its own source, when that source is
 *   configured and no other `targetSource` is asked for;
 * - else the archived schema ({@link archivedEntity}: composite keys, keyless tables, namespace and table kept) in
 *   `targetSource`, or in the archived source when one of that name is configured.
 * The set is `setMap[entity] ?? targetSet ?? the archived set`. Nothing is registered globally.
 */
export function resolveRestoreTarget(
  context: BackupContext,
  item: EntityManifest,
  snapshot: SchemaSnapshot | undefined,
  options: RestoreTargetOptions = {},
): RestoreTarget | undefined {
  const { runtime } = context;
  const targetSet = options.setMap?.[item.entityType] ?? options.targetSet ?? item.set;
  const registered = getEntity(item.entityType);
  // Only an entity declared in code is the application's own: one registered by an introspection earlier in this
  // process is a copy of some archived schema, and the archive's own snapshot is the better one.
  const declared =
    registered?.schema.origin === 'declared' && runtime.sources[registered.schema.source] ? registered : undefined;
  if (declared && (!options.targetSource || declared.schema.source === options.targetSource))
    return { entity: declared.runtime() === runtime ? declared : declared.withRuntime(runtime), targetSet };
  const source = options.targetSource ?? (runtime.sources[item.source] ? item.source : undefined);
  const schema = snapshot?.schema ?? registered?.schema;
  if (!source || !schema) return undefined;
  return { entity: archivedEntity(schema, source, runtime), targetSet };
}

/** What a restore selects by entity name (case-insensitive). */
export interface RestoreSelection {
  readonly includeEntityTypes?: readonly string[] | undefined;
  readonly excludeEntityTypes?: readonly string[] | undefined;
}

/**
 * Refuses entity names the backup does not hold, in either list: a typo must neither restore nothing (and report
 * success) nor restore an entity the caller meant to skip. `ENTITY_NOT_FOUND`, naming the option(s) and the entities
 * the backup holds (`details`: `option`, `missing`, `missingExcluded`, `archived`, `backupId`, `backup`).
 */
export function checkRestoreSelection(
  manifest: Pick<BackupManifest, 'id' | 'name' | 'entities'>,
  selection: RestoreSelection,
): void {
  const archived = [...new Set(manifest.entities.map((e) => e.entityType))];
  const held = new Set(archived.map((e) => e.toLowerCase()));
  const unknown = (names: readonly string[] | undefined) => (names ?? []).filter((n) => !held.has(n.toLowerCase()));
  const missing = unknown(selection.includeEntityTypes);
  const missingExcluded = unknown(selection.excludeEntityTypes);
  if (!missing.length && !missingExcluded.length) return;
  const parts = [
    ...(missing.length ? [`${missing.join(', ')} (includeEntityTypes)`] : []),
    ...(missingExcluded.length ? [`${missingExcluded.join(', ')} (excludeEntityTypes)`] : []),
  ];
  throw new BackupError(
    'ENTITY_NOT_FOUND',
    `Backup ${manifest.name} (${manifest.id}) holds no entity named ${parts.join(' or ')}; nothing was restored. It holds ${manifest.entities.map((e) => `${e.entityType}@${e.set}`).join(', ') || 'no entity'}.`,
    {
      details: {
        backupId: manifest.id,
        backup: manifest.name,
        option: missing.length ? 'includeEntityTypes' : 'excludeEntityTypes',
        ...(missing.length ? { missing } : {}),
        ...(missingExcluded.length ? { missingExcluded } : {}),
        archived,
      },
    },
  );
}
