import {
  assertSetName,
  buildSchema,
  type DataAdapter,
  type DataRecord,
  type DataWriter,
  decodeRecord,
  type Entity,
  type EntitySchema,
  getEntity,
  type ImportMode,
  isAbortError,
  KoanError,
  normalizeValue,
  registerSchema,
  throwIfAborted,
} from '@koan/data';
import type { ZipReader } from './archive/index.js';
import type { BackupContext } from './context.js';
import { compareSchemas, describeDrift, type SchemaDrift } from './drift.js';
import { BackupError, invalidOption } from './errors.js';
import { locateBackup, openArchive } from './locate.js';
import type { EntityManifest } from './manifest.js';
import { type ProgressListener, ProgressTracker } from './progress.js';
import { forEachLimit, matchesFilter } from './select.js';
import { type ArchiveContents, readContents, type SchemaSnapshot, verifyEntries } from './verify.js';

/** A per-entity hook that upgrades archived records to the current schema. Return `undefined` to skip a record. */
export type RecordTransform = (record: DataRecord, context: { entity: string; set: string; archivedSchema: EntitySchema }) => DataRecord | undefined;

export interface RestoreOptions {
  /** Restore into this set instead of the archived one. */
  readonly targetSet?: string;
  /** Profile to read from. Default: the default profile. */
  readonly storageProfile?: string;
  /** Restore this exact backup (by id) instead of the newest completed one with the name. */
  readonly backupId?: string;
  /** Remove existing records of the target set first (in the same transaction where the adapter has transactions). Default false: merge. */
  readonly replaceExisting?: boolean;
  /** How records are written when merging: `upsert` (default) replaces records with the same key, `insert` fails on an existing key. */
  readonly mode?: ImportMode;
  /** Verify checksums, line counts and schema compatibility of the whole archive before writing anything. Default true. */
  readonly validateBeforeRestore?: boolean;
  /** Use the adapter's bulk-load path (COPY, LOAD DATA, prepared bulk insert). Default true. */
  readonly optimizeForBulkInsert?: boolean;
  /** Records written per batch. Default Koan.Backup.DefaultBatchSize. */
  readonly batchSize?: number;
  /** Report what would change and write nothing. */
  readonly dryRun?: boolean;
  /** `strict` (default) refuses any schema drift before writing; `lenient` drops removed fields and converts widened types. */
  readonly schemaPolicy?: 'strict' | 'lenient';
  /** Upcasts old records, by entity name. */
  readonly transforms?: Readonly<Record<string, RecordTransform>>;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressListener;
}

export interface GlobalRestoreOptions extends Omit<RestoreOptions, 'targetSet'> {
  readonly includeEntityTypes?: readonly string[];
  readonly excludeEntityTypes?: readonly string[];
  /** Restore every entity into this set. */
  readonly targetSet?: string;
  /** Per-entity target set: `{ User: 'staging' }`; wins over `targetSet`. */
  readonly setMap?: Readonly<Record<string, string>>;
  /** Entities restored at the same time (different sources only; one source is restored in dependency order). Default 1. */
  readonly maxConcurrency?: number;
  /** Source for entities in the archive that this application does not declare (restored with the archived schema). */
  readonly targetSource?: string;
}

export interface EntityRestoreReport {
  readonly entityType: string;
  readonly set: string;
  readonly targetSet: string;
  readonly source: string;
  readonly provider: string;
  status: 'Restored' | 'DryRun' | 'Failed' | 'Skipped';
  inserted: number;
  updated: number;
  /** Records not written: skipped by a transform, or (dry run) nothing. */
  skipped: number;
  failed: number;
  /** Existing records removed by `replaceExisting` (or that would be, in a dry run). */
  removed: number;
  droppedFields: string[];
  durationMs: number;
  error?: string;
}

export interface RestoreReport {
  readonly backupId: string;
  readonly backupName: string;
  readonly storageProfile: string;
  readonly validated: boolean;
  readonly dryRun: boolean;
  readonly entities: EntityRestoreReport[];
  readonly totalRecords: number;
  readonly durationMs: number;
  readonly drift: SchemaDrift[];
}

interface Plan {
  readonly item: EntityManifest;
  readonly entity: Entity;
  readonly schema: EntitySchema;
  readonly archived: EntitySchema;
  readonly targetSet: string;
  readonly drift: SchemaDrift | undefined;
}

function orderByDependencies(plans: Plan[]): Plan[] {
  const byName = new Map<string, Plan[]>();
  for (const p of plans) byName.set(p.schema.name, [...(byName.get(p.schema.name) ?? []), p]);
  const done = new Set<string>();
  const visiting = new Set<string>();
  const out: Plan[] = [];
  const visit = (name: string) => {
    if (done.has(name) || visiting.has(name)) return; // a cycle: keep the order found so far
    visiting.add(name);
    for (const p of byName.get(name) ?? [])
      for (const f of Object.values(p.schema.fields)) if (f.references && f.references.entity !== name && byName.has(f.references.entity)) visit(f.references.entity);
    visiting.delete(name);
    done.add(name);
    out.push(...(byName.get(name) ?? []));
  };
  for (const name of [...byName.keys()].sort()) visit(name);
  return out;
}

function makeConverter(plan: Plan, transform: RecordTransform | undefined, dropped: Set<string>) {
  const { drift, schema, archived } = plan;
  if ((!drift || drift.identical) && !transform) return undefined;
  const changed = new Map((drift?.changed ?? []).map((c) => [c.field, c]));
  return (record: DataRecord): DataRecord | undefined => {
    let out: DataRecord = record;
    if (drift && !drift.identical) {
      out = {};
      for (const [k, v] of Object.entries(record)) {
        const spec = schema.fields[k];
        if (!spec) {
          dropped.add(k);
          continue;
        }
        if (changed.has(k) && v !== null) {
          // widening conversions only (see drift.ts): the target's own normalisation does the work
          out[k] = normalizeValue(schema.name, k, spec, spec.type === 'string' ? String(v) : v);
        } else out[k] = v;
      }
    }
    if (transform) return transform(out, { entity: schema.name, set: plan.item.set, archivedSchema: archived });
    return out;
  };
}

async function* decodeLines(
  reader: ZipReader,
  plan: Plan,
  batchSize: number,
  convert: ((r: DataRecord) => DataRecord | undefined) | undefined,
  onSkip: () => void,
  signal: AbortSignal | undefined,
): AsyncGenerator<DataRecord[]> {
  const file = plan.item.storageFile;
  let lineCount = 0;
  let unterminated = false;
  for await (const batch of reader.lines(file, {
    batchSize,
    ...(signal ? { signal } : {}),
    onDone: (d) => {
      unterminated = d.missingFinalNewline;
    },
  })) {
    const records: DataRecord[] = [];
    for (let i = 0; i < batch.lines.length; i++) {
      const text = batch.lines[i]!;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new BackupError('ARCHIVE_CORRUPT', `${file} line ${batch.firstLine + i}: not valid JSON (${(e as Error).message}); nothing of ${plan.schema.name} was kept`, {
          cause: e,
          details: { entry: file, line: batch.firstLine + i },
        });
      }
      let decoded: DataRecord;
      try {
        const { record, unknown } = decodeRecord(plan.archived, parsed as Record<string, unknown>);
        if (unknown.length) throw new Error(`fields not in the archived schema: ${unknown.join(', ')}`);
        decoded = record;
      } catch (e) {
        throw new BackupError('ARCHIVE_CORRUPT', `${file} line ${batch.firstLine + i}: ${(e as Error).message}`, { cause: e, details: { entry: file, line: batch.firstLine + i } });
      }
      const record = convert ? convert(decoded) : decoded;
      if (record === undefined) onSkip();
      else records.push(record);
    }
    lineCount += batch.lines.length;
    yield records;
  }
  if (unterminated) throw new BackupError('ARCHIVE_CORRUPT', `${file}: the last line is not terminated; the entry is truncated`, { details: { entry: file } });
  if (lineCount !== plan.item.itemCount)
    throw new BackupError('ARCHIVE_CORRUPT', `${file}: ${lineCount} lines, but the manifest records ${plan.item.itemCount}`, { details: { entry: file } });
}

/**
 * Restores entity sets from a backup. With `validateBeforeRestore` the whole selection is verified
 * (checksums, line counts, schema compatibility) before the first write; each entity set is then
 * written in one transaction where the adapter has transactions.
 */
export async function runRestore(
  context: BackupContext,
  ref: string,
  select: (item: EntityManifest) => boolean,
  resolveTarget: (item: EntityManifest, snapshot: SchemaSnapshot | undefined) => { entity: Entity; targetSet: string } | undefined,
  options: GlobalRestoreOptions,
): Promise<RestoreReport> {
  const started = performance.now();
  const signal = options.signal;
  const batchSize = options.batchSize ?? context.config.defaultBatchSize;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) throw invalidOption('batchSize', batchSize, 'an integer from 1 to 100000');
  const maxConcurrency = options.maxConcurrency ?? 1;
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1) throw invalidOption('maxConcurrency', maxConcurrency, 'a positive integer');
  const mode: ImportMode = options.mode ?? 'upsert';
  if (mode !== 'upsert' && mode !== 'insert') throw invalidOption('mode', mode, '"upsert" or "insert"');
  const policy = options.schemaPolicy ?? 'strict';
  const validate = options.validateBeforeRestore ?? true;
  const located = await locateBackup(context, options.backupId ?? ref, {
    ...(options.storageProfile ? { storageProfile: options.storageProfile } : {}),
    allowPartial: options.backupId !== undefined,
    ...(signal ? { signal } : {}),
  });
  const reader = await openArchive(located, signal);
  try {
    const contents: ArchiveContents = await readContents(reader, located.sidecar);
    const { manifest } = contents;
    const plans: Plan[] = [];
    const skipped: EntityRestoreReport[] = [];
    const problems: string[] = [];
    for (const item of manifest.entities) {
      if (!select(item)) continue;
      const snapshot = contents.snapshots?.find((s) => s.entityType === item.entityType && s.set === item.set);
      const base = { entityType: item.entityType, set: item.set, source: item.source, provider: item.provider, inserted: 0, updated: 0, skipped: 0, failed: 0, removed: 0, droppedFields: [], durationMs: 0 };
      if (item.status !== 'Completed') {
        skipped.push({ ...base, targetSet: item.set, status: 'Skipped', error: `failed during backup: ${item.errorMessage ?? ''}` });
        continue;
      }
      const target = resolveTarget(item, snapshot);
      if (!target) {
        problems.push(
          `${item.entityType}: the archive has it but this application defines no such entity; define it with defineEntity, exclude it, or pass targetSource to restore it with the archived schema`,
        );
        continue;
      }
      assertSetName(target.targetSet);
      const schema = target.entity.schema;
      const archived = snapshot?.schema ?? schema;
      const drift = snapshot ? compareSchemas(archived, schema) : undefined;
      if (drift && !drift.identical) {
        const fatal =
          drift.keyChanged ||
          drift.missingRequired.length > 0 ||
          drift.changed.some((c) => !c.convertible) ||
          (policy === 'strict' && (drift.removed.length > 0 || drift.changed.length > 0));
        if (fatal && !options.transforms?.[schema.name])
          problems.push(
            `${schema.name}: the archived schema differs from the current one (${describeDrift(drift)}). ${policy === 'strict' ? 'Use schemaPolicy "lenient" to drop removed fields and convert widened types, or ' : ''}add a transform for ${schema.name}.`,
          );
      }
      plans.push({ item, entity: target.entity, schema, archived, targetSet: target.targetSet, drift });
    }
    if (problems.length)
      throw new BackupError('SCHEMA_INCOMPATIBLE', `Nothing was restored from ${manifest.name}:\n- ${problems.join('\n- ')}`, { details: { problems } });
    const progress = new ProgressTracker('restore', manifest.name, options.onProgress);
    progress.overallTotalRecords = plans.reduce((n, p) => n + p.item.itemCount, 0);
    if (validate) {
      const report = await verifyEntries(reader, contents, { deep: false, only: new Set(plans.map((p) => p.item.storageFile)), ...(signal ? { signal } : {}) });
      if (report.issues.length)
        throw new BackupError('VALIDATION_FAILED', `Backup ${manifest.name} (${manifest.id}) failed validation; nothing was written:\n- ${report.issues.join('\n- ')}`, {
          details: { issues: report.issues },
        });
    }
    throwIfAborted(signal);
    progress.emit('start');
    const reports: EntityRestoreReport[] = [...skipped];
    const bySource = new Map<string, Plan[]>();
    for (const p of plans) bySource.set(p.schema.source, [...(bySource.get(p.schema.source) ?? []), p]);
    await forEachLimit([...bySource.entries()], maxConcurrency, async ([source, group]) => {
      const adapter = await context.runtime.adapter(source);
      for (const plan of orderByDependencies(group)) {
        const report = await restoreOne(adapter, reader, plan, { ...options, mode, batchSize, policy }, progress);
        reports.push(report);
      }
    });
    progress.emit('done');
    return {
      backupId: manifest.id,
      backupName: manifest.name,
      storageProfile: located.profile,
      validated: validate,
      dryRun: options.dryRun ?? false,
      entities: reports,
      totalRecords: reports.reduce((n, r) => n + r.inserted + r.updated, 0),
      durationMs: performance.now() - started,
      drift: plans.flatMap((p) => (p.drift && !p.drift.identical ? [p.drift] : [])),
    };
  } catch (e) {
    if (signal?.aborted || isAbortError(e) || (e instanceof KoanError && e.code === 'ABORTED'))
      throw new BackupError('ABORTED', `Restore of "${ref}" was cancelled`, { cause: e });
    throw e;
  } finally {
    await reader.close();
  }
}

async function restoreOne(
  adapter: DataAdapter,
  reader: ZipReader,
  plan: Plan,
  options: GlobalRestoreOptions & { mode: ImportMode; batchSize: number; policy: 'strict' | 'lenient' },
  progress: ProgressTracker,
): Promise<EntityRestoreReport> {
  const t0 = performance.now();
  const { schema, targetSet, item } = plan;
  const report: EntityRestoreReport = {
    entityType: schema.name,
    set: item.set,
    targetSet,
    source: schema.source,
    provider: adapter.provider,
    status: options.dryRun ? 'DryRun' : 'Restored',
    inserted: 0,
    updated: 0,
    skipped: 0,
    failed: 0,
    removed: 0,
    droppedFields: [],
    durationMs: 0,
  };
  const dropped = new Set<string>();
  const convert = makeConverter(plan, options.transforms?.[schema.name], dropped);
  const current = { entity: schema.name, set: targetSet, records: 0, totalRecords: item.itemCount };
  progress.emit('entity-start', current);
  await plan.entity.ensure(adapter, targetSet);
  const signal = options.signal;
  const records = () =>
    decodeLines(reader, plan, options.batchSize, convert, () => report.skipped++, signal);
  const counted = (n: number) => {
    current.records += n;
    progress.overallRecords += n;
    progress.emit('progress', current);
  };
  try {
    if (options.dryRun) {
      if (options.replaceExisting) report.removed = await adapter.count(schema, targetSet);
      for await (const batch of records()) {
        if (options.replaceExisting) report.inserted += batch.length;
        else {
          const keys = batch.map((r) => r[schema.key] as string | number);
          const existing = await adapter.getMany(schema, targetSet, keys);
          report.updated += existing.length;
          report.inserted += batch.length - existing.length;
        }
        counted(batch.length);
      }
    } else {
      await adapter.transaction(async (tx: DataWriter) => {
        if (options.replaceExisting) report.removed = await tx.clear(schema, targetSet);
        for await (const batch of records()) {
          throwIfAborted(signal);
          if (batch.length) {
            const r = await tx.importBatch(schema, targetSet, batch, { mode: options.mode, bulk: options.optimizeForBulkInsert ?? true, ...(signal ? { signal } : {}) });
            report.inserted += r.inserted;
            report.updated += r.updated;
          }
          counted(batch.length);
        }
      });
    }
  } catch (e) {
    report.status = 'Failed';
    report.failed = item.itemCount - report.skipped;
    report.error = (e as Error).message;
    if (!adapter.capabilities.transactions) report.error += ' (this provider has no transactions: records written before the failure remain)';
    throw new BackupError('RESTORE_FAILED', `Restoring ${schema.name}@${targetSet} failed${adapter.capabilities.transactions ? ' and was rolled back' : ''}: ${(e as Error).message}`, {
      cause: e,
      details: { entity: schema.name, set: targetSet, report },
    });
  }
  report.droppedFields = [...dropped];
  report.durationMs = performance.now() - t0;
  progress.emit('entity-done', current);
  return report;
}

/** Restores one entity's sets from the newest completed backup named `name`. */
export function restoreEntity(context: BackupContext, entity: Entity, name: string, options: RestoreOptions = {}): Promise<RestoreReport> {
  const bound = entity.runtime() === context.runtime ? entity : entity.withRuntime(context.runtime);
  if (options.targetSet !== undefined) assertSetName(options.targetSet);
  return runRestore(
    context,
    name,
    (item) => item.entityType === entity.schema.name,
    (item) => ({ entity: bound, targetSet: options.targetSet ?? item.set }),
    options,
  );
}

/** Restores every entity of a backup (filtered), each into the entity this application defines under that name. */
export function restoreAllEntities(context: BackupContext, ref: string, options: GlobalRestoreOptions = {}): Promise<RestoreReport> {
  if (options.targetSet !== undefined) assertSetName(options.targetSet);
  return runRestore(
    context,
    ref,
    (item) =>
      matchesFilter(
        { name: item.entityType, provider: item.provider },
        { ...(options.includeEntityTypes ? { includeEntityTypes: options.includeEntityTypes } : {}), ...(options.excludeEntityTypes ? { excludeEntityTypes: options.excludeEntityTypes } : {}) },
      ),
    (item, snapshot) => {
      const targetSet = options.setMap?.[item.entityType] ?? options.targetSet ?? item.set;
      let entity = getEntity(item.entityType);
      if (!entity && options.targetSource && snapshot) {
        const s = snapshot.schema;
        entity = registerSchema(buildSchema({ name: s.name, key: s.key, fields: s.fields, source: options.targetSource, ...(s.table ? { table: s.table } : {}) }, 'introspected'));
      }
      if (!entity) return undefined;
      return { entity: entity.runtime() === context.runtime ? entity : entity.withRuntime(context.runtime), targetSet };
    },
    options,
  );
}
