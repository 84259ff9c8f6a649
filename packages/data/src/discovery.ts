import type { AdapterCapabilities, NotDataObject, SkippedTable } from './adapter.js';
import { type Entity, getEntity, registeredEntities, registerSchema } from './entity.js';
import { type DataRuntime, getDataRuntime } from './runtime.js';
import { type EntitySchema, entityNamesForTables, type KeyType } from './schema.js';

/** What discovery reports about one entity. */
export interface EntityInfo {
  readonly name: string;
  readonly source: string;
  readonly provider: string;
  readonly keyType: KeyType;
  readonly schema: EntitySchema;
  /** Sets that exist in the store (at least `root` once warmed up). */
  readonly sets: readonly string[];
  readonly capabilities: AdapterCapabilities;
  readonly entity: Entity;
}

export interface DiscoverOptions {
  readonly runtime?: DataRuntime;
  /** Also list tables of sources that no code declares (adapters with `introspection`). Default false. */
  readonly introspect?: boolean;
  /** Only these sources. */
  readonly sources?: readonly string[];
}

/**
 * Lists every entity the application defines, with its source, provider, key type, schema and sets.
 * Needs no configuration: `defineEntity` registers each entity as its module loads.
 */
export async function discoverEntities(options: DiscoverOptions = {}): Promise<EntityInfo[]> {
  const runtime = options.runtime ?? getDataRuntime();
  if (options.introspect) await introspectSources(runtime, options.sources);
  const out: EntityInfo[] = [];
  for (const entity of registeredEntities()) {
    const { schema } = entity;
    if (options.sources && !options.sources.includes(schema.source)) continue;
    if (!runtime.sources[schema.source]) continue;
    const adapter = await runtime.adapter(schema.source);
    const sets = await adapter.listSets(schema);
    out.push({
      name: schema.name,
      source: schema.source,
      provider: adapter.provider,
      keyType: schema.keyType,
      schema,
      sets,
      capabilities: adapter.capabilities,
      entity: options.runtime ? entity.withRuntime(runtime) : entity,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** What {@link introspectSources} found in every source it read. */
export interface SourcesIntrospection {
  /** The entities registered (or already registered under those names). */
  readonly entities: EntitySchema[];
  /** Tables that could not be introspected, by source: backups fail naming them unless they are excluded. */
  readonly skipped: (SkippedTable & { readonly source: string })[];
  /** Views and other objects that hold no data of their own, by source. */
  readonly notData: (NotDataObject & { readonly source: string })[];
}

/**
 * Registers the undeclared tables of every source whose adapter can introspect, and reports the tables it could not
 * introspect and the objects that are not data. A table whose entity name is taken by an entity of another source
 * (declared, or introspected from an earlier source) is registered as `<name>_<source>` (`_2`, `_3`... if that is
 * taken too), keeping its table, and the references of its source's entities follow the new name: two databases that
 * both hold `users` back up as `users` and `users_analytics`.
 */
export async function introspectSources(
  runtime: DataRuntime = getDataRuntime(),
  sources?: readonly string[],
): Promise<SourcesIntrospection> {
  const found: EntitySchema[] = [];
  const skipped: SourcesIntrospection['skipped'] = [];
  const notData: SourcesIntrospection['notData'] = [];
  for (const source of sources ?? runtime.sourceNames()) {
    const adapter = await runtime.adapter(source);
    if (!adapter.capabilities.introspection || !adapter.introspect) continue;
    const result = await adapter.introspect();
    for (const s of result.skipped) skipped.push({ ...s, source });
    for (const n of result.notData) notData.push({ ...n, source });
    const schemas = result.entities;
    const renamed = new Map<string, string>();
    const taken = new Set(registeredEntities().map((e) => e.schema.name));
    for (const schema of schemas) {
      const other = getEntity(schema.name);
      if (!other || other.schema.source === source) continue;
      const [name] = entityNamesForTables([`${schema.name}_${source}`], taken).values();
      renamed.set(schema.name, name!);
    }
    for (const schema of schemas) {
      const own = renamed.size ? withRenames(schema, renamed) : schema;
      registerSchema(own);
      found.push(own);
    }
  }
  return { entities: found, skipped, notData };
}

/** `schema` under its new name (if renamed), its table kept, its references to renamed entities following them. */
function withRenames(schema: EntitySchema, renamed: ReadonlyMap<string, string>): EntitySchema {
  const fields = Object.fromEntries(
    Object.entries(schema.fields).map(([field, spec]) => {
      const to = spec.references && renamed.get(spec.references.entity);
      return [field, to ? Object.freeze({ ...spec, references: { ...spec.references!, entity: to } }) : spec];
    }),
  );
  const name = renamed.get(schema.name);
  return Object.freeze({
    ...schema,
    ...(name ? { name, table: schema.table ?? schema.name } : {}),
    fields: Object.freeze(fields),
  });
}

/**
 * Connects every source that has entities and creates every entity's root table, so the first real
 * operation does not pay for it and misconfiguration shows at startup.
 */
export async function warmup(runtime: DataRuntime = getDataRuntime()): Promise<void> {
  for (const entity of registeredEntities()) {
    if (!runtime.sources[entity.schema.source]) continue;
    const adapter = await runtime.adapter(entity.schema.source);
    await entity.ensure(adapter, 'root');
  }
}
