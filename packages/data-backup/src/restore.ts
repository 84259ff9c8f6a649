import { createHash } from 'node:crypto';
import {
  type DataAdapter,
  DataError,
  type DataRecord,
  type DataRuntime,
  type Entity,
  type EntitySchema,
  KoanError,
} from '@koan/data';
import {
  assertSetName,
  type DataWriter,
  decodeRecord,
  describeKey,
  type ImportMode,
  type ImportResult,
  isAbortError,
  type JsonEncoding,
  jsonEncodingOf,
  normalizeRecord,
  normalizeValue,
  type StructureTarget,
  throwIfAborted,
} from '@koan/data/adapter-kit';
import type { ZipReader } from './archive/index.js';
import { type ByteSize, batchBytesOption } from './budget.js';
import type { LocatedBackup } from './catalog.js';
import type { BackupContext } from './context.js';
import { compareSchemas, describeDrift, type SchemaDrift } from './drift.js';
import { BackupError, invalidOption } from './errors.js';
import { assertWithin, BATCH_SIZE, MAX_CONCURRENCY } from './limits.js';
import { archiveHashProblem, locateBackup, openArchive } from './locate.js';
import type { BackupStatus, EntityManifest } from './manifest.js';
import { type ProgressListener, ProgressTracker } from './progress.js';
import { refuseSharedTargetSets, refuseTargetCollisions } from './restore/collisions.js';
import { holdsRecords, keylessMergeProblem, refuseKeylessMerges } from './restore/keyless.js';
import { checkTargetColumns } from './restore/target-columns.js';
import { countExisting, refuseDynamicFields } from './restore-checks.js';
import { checkRestoreSelection, resolveRestoreTarget } from './restore-target.js';
import { forEachLimit, matchesFilter } from './select.js';
import {
  type ArchiveContents,
  readContents,
  type SchemaSnapshot,
  type SourceStructure,
  verifyEntries,
} from './verify.js';

/** A per-entity hook that upgrades archived records to the current schema. Return `undefined` to skip a record. */
export type RecordTransform = (
  record: DataRecord,
  context: { entity: string; set: string; archivedSchema: EntitySchema },
) => DataRecord | undefined;

export interface RestoreOptions {
  /**
   * Restore into this set instead of the archived one. An entity backed up with several sets restores one of them at
   * a time into a target set (choose it with `sets`): two archived sets never merge into one.
   */
  readonly targetSet?: string;
  /** Only these archived sets of the selected entities. Default: every set the backup holds. */
  readonly sets?: readonly string[];
  /** Profile to read from. Default: every configured profile (by name: the newest completed backup among them). */
  readonly storageProfile?: string;
  /** Restore this exact backup (by id) instead of the newest completed one with the name. */
  readonly backupId?: string;
  /**
   * By name across profiles: when a profile cannot be listed, restore the newest backup of the reachable ones instead
   * of failing with `PROFILE_UNAVAILABLE` (which names that candidate). See `locateBackup`.
   */
  readonly allowUnreachableProfiles?: boolean;
  /**
   * Restore this archive file instead of a backup of the catalog: its embedded manifest stands for the sidecar (see
   * `locateBackup`). For command-line use; never take it from a network request.
   */
  readonly archivePath?: string;
  /**
   * Remove existing records of the target sets first, in the same transaction as the writes where the adapter has
   * transactions (children before parents). Default false: merge.
   */
  readonly replaceExisting?: boolean;
  /**
   * How records are written: `upsert` (default, merge) replaces records with the same key; `insert` (insert-only)
   * refuses to touch existing records: an existing key fails the restore, and the source's transaction is rolled back
   * where the adapter has transactions (`capabilities.transactions`; Redis and LanceDB do not: what was written before
   * the clash stays).
   */
  readonly mode?: ImportMode;
  /** Verify checksums and line counts of the whole archive, and schema compatibility, before writing anything. Default true. */
  readonly validateBeforeRestore?: boolean;
  /** Use the adapter's bulk-load path (COPY, LOAD DATA, prepared bulk insert). Default true. */
  readonly optimizeForBulkInsert?: boolean;
  /** Records written per batch. Default Koan.Backup.DefaultBatchSize. */
  readonly batchSize?: number;
  /** Bytes per batch (a number or `"8MiB"`): a batch closes at `batchSize` or at this. Default Koan.Backup.DefaultBatchBytes. */
  readonly batchBytes?: ByteSize;
  /** Report what would change and write nothing. */
  readonly dryRun?: boolean;
  /**
   * Restoring into the same kind of store the backup came from (PostgreSQL into PostgreSQL...), create missing tables
   * from the archived native structure: the source's own column types, defaults, identity/serial/AUTO_INCREMENT with
   * the sequence where it was, generated columns, checks, keys, indexes and foreign keys, enums and domains. Default
   * true. `false` creates missing tables from the field types, as for another kind of store.
   */
  readonly structure?: boolean;
  /**
   * What to do when an entity's archived schema differs from its current one (see {@link SchemaDrift}):
   * - `strict` (default): any difference (field added, removed or retyped, nullability, optionality or decimal size
   *   changed, key changed) fails the restore before anything is written, unless the entity has a transform.
   * - `lenient`: fields the entity no longer has are dropped (listed in `droppedFields`), new optional fields are left
   *   empty and widened types are converted (integer → number/string, not nullable → nullable, a wider decimal...).
   *   Fields an existing target table has no column for (a table made by migrations) are left out too, and named in
   *   `missingColumns` (strict: the restore is refused, `SCHEMA_INCOMPATIBLE`, naming them).
   *   An entity whose drift cannot be bridged (key changed, new required field, incompatible type, or a narrowing:
   *   nullable → not nullable, optional → required, fewer decimal digits) and has no transform is reported `Failed`
   *   with nothing written; the other entities are restored.
   */
  readonly schemaPolicy?: 'strict' | 'lenient';
  /**
   * Upcasts old records, by entity name. A transform receives each record decoded with the archived schema (old
   * fields included) and returns it in the current shape (or `undefined` to skip it); the result is then checked
   * against the current schema, so a record that still does not fit fails its entity.
   */
  readonly transforms?: Readonly<Record<string, RecordTransform>>;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressListener;
  /** Minimum milliseconds between `progress` events (phase changes are always reported). Default 250; 0 reports every batch. */
  readonly progressIntervalMs?: number;
}

export interface GlobalRestoreOptions extends Omit<RestoreOptions, 'targetSet'> {
  readonly includeEntityTypes?: readonly string[];
  readonly excludeEntityTypes?: readonly string[];
  /** Restore every entity into this set. */
  readonly targetSet?: string;
  /** Per-entity target set: `{ User: 'staging' }`; wins over `targetSet`. */
  readonly setMap?: Readonly<Record<string, string>>;
  /**
   * Sources restored at the same time. Each source is restored in one transaction where the adapter has them
   * (entities in foreign-key order, parents first), so a failure or cancellation rolls back that whole source. Default 1, at most 64.
   */
  readonly maxConcurrency?: number;
  /**
   * Restore into this configured source, each entity with its archived schema (table, namespace, composite key,
   * keyless table kept). Without it, an entity goes to the entity this application declares under that name (its own
   * source), else to the archived source when one of that name is configured. See `resolveRestoreTarget`.
   */
  readonly targetSource?: string;
}

export interface EntityRestoreReport {
  readonly entityType: string;
  readonly set: string;
  readonly targetSet: string;
  readonly source: string;
  readonly provider: string;
  status: 'Restored' | 'DryRun' | 'Failed' | 'Skipped';
  /** Records inserted (dry run: that would be). */
  inserted: number;
  /** Existing records replaced (dry run: that would be). */
  updated: number;
  /** Records not written because a transform returned `undefined`, or because their TTL had passed (see `expired`). */
  skipped: number;
  /** Of `skipped`: records whose time to live ended before they were restored (stores with TTLs, e.g. Redis). */
  expired?: number;
  /** Records not written because the entity failed (or, in a dry run, would fail: e.g. existing keys in `insert` mode). */
  failed: number;
  /** Existing records removed by `replaceExisting` (or that would be, in a dry run). */
  removed: number;
  /** Fields whose archived values were not written (see `schemaPolicy` lenient, and `missingColumns`). */
  droppedFields: string[];
  /** Lenient: fields the existing target table has no column for; not written (those holding values: `droppedFields`). */
  missingColumns?: string[];
  durationMs: number;
  error?: string;
}

/**
 * The outcome of a whole restore: `Completed` when every selected entity set was restored, `PartiallyCompleted` when
 * some were not: they failed (lenient schema policy), or the archive does not hold them because they failed during
 * the backup (a `PartiallyCompleted` backup: reported `Skipped`, listed in `notInArchive`); `Failed` when none was
 * restored, `DryRun` for a dry run (see each entity's status for what would fail).
 */
export type RestoreStatus = 'Completed' | 'PartiallyCompleted' | 'Failed' | 'DryRun';

export interface RestoreReport {
  readonly backupId: string;
  readonly backupName: string;
  readonly storageProfile: string;
  readonly status: RestoreStatus;
  /** The status of the backup restored from: `PartiallyCompleted` when some of its entity sets failed. */
  readonly backupStatus: BackupStatus;
  /**
   * Selected entity sets the archive does not hold (they failed during the backup), with why; absent when none.
   * They are not restored, so the restore is not `Completed`; leave them out of the selection to restore the rest.
   */
  readonly notInArchive?: readonly { readonly entity: string; readonly set: string; readonly reason: string }[];
  readonly validated: boolean;
  readonly dryRun: boolean;
  readonly entities: EntityRestoreReport[];
  /** Tables created from the archived native structure (`namespace.table`), by target source. */
  readonly createdTables: { readonly source: string; readonly tables: readonly string[] }[];
  /** Profiles that could not be listed when the backup was picked by name (`allowUnreachableProfiles`). */
  readonly unavailableProfiles?: readonly {
    readonly profile: string;
    readonly code: string;
    readonly message: string;
  }[];
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
  readonly transform: RecordTransform | undefined;
  /** Why this entity cannot be restored (lenient policy: drift without a bridge); it is reported `Failed`. */
  readonly blocked: string | undefined;
  /** The archived native structure of the entity's source, when the archive has one. */
  readonly structure: SourceStructure | undefined;
  /** How the archive's lines spell json fields (by its format version). */
  readonly json: JsonEncoding;
  /** Lenient: fields the existing target table has no column for, left out of `schema` and of every record. */
  readonly missingColumns?: readonly string[] | undefined;
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
      for (const f of Object.values(p.schema.fields))
        if (f.references && f.references.entity !== name && byName.has(f.references.entity)) visit(f.references.entity);
    visiting.delete(name);
    done.add(name);
    out.push(...(byName.get(name) ?? []));
  };
  for (const name of [...byName.keys()].sort()) visit(name);
  return out;
}

/**
 * Maps archived records to the current schema: the transform first (it sees the old fields), then fields the entity
 * no longer has are dropped and widened types converted; with a transform the result is validated against the
 * current schema (a record that still does not fit fails its entity).
 */
function makeConverter(plan: Plan, dropped: Set<string>): ((record: DataRecord) => DataRecord | undefined) | undefined {
  const { drift, schema, archived, transform } = plan;
  if ((!drift || drift.identical) && !transform && !plan.missingColumns?.length) return undefined;
  const changed = new Map((drift?.changed ?? []).map((c) => [c.field, c]));
  return (record: DataRecord): DataRecord | undefined => {
    let input: DataRecord | undefined = record;
    if (transform) {
      input = transform(record, { entity: schema.name, set: plan.item.set, archivedSchema: archived });
      if (input === undefined) return undefined;
    }
    const out: DataRecord = {};
    for (const [k, v] of Object.entries(input)) {
      const spec = schema.fields[k];
      if (!spec) {
        if (v !== undefined) dropped.add(k);
        continue;
      }
      const change = changed.get(k);
      // widening conversions only (see drift.ts): the target's own normalisation does the work
      if (change?.convertible && v !== null && v !== undefined)
        out[k] = normalizeValue(
          schema.name,
          k,
          spec,
          spec.type === 'string' ? (typeof v === 'bigint' ? v.toString() : String(v)) : v,
        );
      else out[k] = v;
    }
    return transform ? normalizeRecord(schema, out) : out;
  };
}

async function* decodeLines(
  reader: ZipReader,
  plan: Plan,
  batching: Pick<WriteOptions, 'batchSize' | 'batchBytes'>,
  convert: ((r: DataRecord) => DataRecord | undefined) | undefined,
  onSkip: () => void,
  onBytes: (bytes: number) => void,
  signal: AbortSignal | undefined,
): AsyncGenerator<DataRecord[]> {
  const file = plan.item.storageFile;
  for await (const batch of rawLines(reader, plan, batching, onBytes, signal)) {
    const records: DataRecord[] = [];
    for (let i = 0; i < batch.lines.length; i++) {
      const text = batch.lines[i]!;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new BackupError(
          'ARCHIVE_CORRUPT',
          `${file} line ${batch.firstLine + i}: not valid JSON (${(e as Error).message}); nothing of ${plan.schema.name} was kept`,
          {
            cause: e,
            details: { entry: file, line: batch.firstLine + i },
          },
        );
      }
      let decoded: DataRecord;
      try {
        const { record, unknown } = decodeRecord(plan.archived, parsed as Record<string, unknown>, plan.json);
        if (unknown.length) throw new Error(`fields not in the archived schema: ${unknown.join(', ')}`);
        decoded = record;
      } catch (e) {
        throw new BackupError('ARCHIVE_CORRUPT', `${file} line ${batch.firstLine + i}: ${(e as Error).message}`, {
          cause: e,
          details: { entry: file, line: batch.firstLine + i },
        });
      }
      let record: DataRecord | undefined;
      try {
        record = convert ? convert(decoded) : decoded;
      } catch (e) {
        throw new BackupError(
          'SCHEMA_INCOMPATIBLE',
          `${file} line ${batch.firstLine + i}: does not fit the current ${plan.schema.name} schema: ${(e as Error).message}`,
          {
            cause: e,
            details: { entry: file, line: batch.firstLine + i },
          },
        );
      }
      if (record === undefined) onSkip();
      else records.push(record);
    }
    yield records;
  }
}

/**
 * Restores entity sets from a backup. With `validateBeforeRestore` the whole archive is verified (checksums, line
 * counts) and the selection's schema compatibility checked before the first write. Each source is then written in
 * one transaction where its adapter has transactions, entities in foreign-key order (parents first).
 */
export async function runRestore(
  context: BackupContext,
  ref: string | LocatedBackup,
  select: (item: EntityManifest) => boolean,
  resolveTarget: (
    item: EntityManifest,
    snapshot: SchemaSnapshot | undefined,
  ) => { entity: Entity; targetSet: string } | undefined,
  options: GlobalRestoreOptions,
): Promise<RestoreReport> {
  const started = performance.now();
  const signal = options.signal;
  const batchSize = options.batchSize ?? context.config.defaultBatchSize;
  assertWithin('batchSize', batchSize, BATCH_SIZE);
  const batchBytes = batchBytesOption(options.batchBytes, context.config.defaultBatchBytes);
  const maxConcurrency = options.maxConcurrency ?? 1;
  assertWithin('maxConcurrency', maxConcurrency, MAX_CONCURRENCY);
  const mode: ImportMode = options.mode ?? 'upsert';
  if (mode !== 'upsert' && mode !== 'insert') throw invalidOption('mode', mode, '"upsert" or "insert"');
  const policy = options.schemaPolicy ?? 'strict';
  if (policy !== 'strict' && policy !== 'lenient') throw invalidOption('schemaPolicy', policy, '"strict" or "lenient"');
  const validate = options.validateBeforeRestore ?? true;
  // A backup the caller has already located (to check the selection against it) is restored as it is.
  const located = typeof ref === 'string' ? await locateForRestore(context, ref, options) : ref;
  const reader = await openArchive(located, signal);
  const reports: EntityRestoreReport[] = [];
  try {
    const contents: ArchiveContents = await readContents(reader, located.sidecar);
    const { manifest } = contents;
    const plans: Plan[] = [];
    const problems: string[] = [];
    /** Archived entities this application does not declare (restorable only with `targetSource`). */
    const undeclared: string[] = [];
    let selected = 0;
    for (const item of manifest.entities) {
      if (!select(item) || (options.sets && !options.sets.includes(item.set))) continue;
      selected++;
      const snapshot = contents.snapshots?.find((s) => s.entityType === item.entityType && s.set === item.set);
      if (item.status !== 'Completed') {
        reports.push({
          ...emptyReport(item, item.set, item.source, item.provider),
          status: 'Skipped',
          error: `not in the archive: it failed during the backup: ${item.errorMessage ?? 'no reason recorded'}`,
        });
        continue;
      }
      const target = resolveTarget(item, snapshot);
      if (!target) {
        undeclared.push(item.entityType);
        problems.push(
          `${item.entityType}: the archive has it but this application defines no such entity; define it with defineEntity, exclude it, or pass targetSource to restore it with the archived schema`,
        );
        continue;
      }
      assertSetName(target.targetSet);
      const schema = target.entity.schema;
      const archived = snapshot?.schema ?? schema;
      const drift = snapshot ? compareSchemas(archived, schema) : undefined;
      const transform = options.transforms?.[schema.name];
      let blocked: string | undefined;
      if (drift && !drift.identical && !transform) {
        const unbridgeable =
          drift.keyChanged || drift.missingRequired.length > 0 || drift.changed.some((c) => !c.convertible);
        if (policy === 'strict')
          problems.push(
            `${schema.name}: the archived schema differs from the current one (${describeDrift(drift)}). Use schemaPolicy "lenient" to drop removed fields, leave new optional fields empty and convert widened types, or add a transform for ${schema.name}.`,
          );
        else if (unbridgeable)
          blocked = `the archived schema cannot be mapped to the current one (${describeDrift(drift)}); add a transform for ${schema.name}`;
      }
      plans.push({
        item,
        entity: target.entity,
        schema,
        archived,
        targetSet: target.targetSet,
        drift,
        transform,
        blocked,
        structure: contents.structures.find((x) => x.source === item.source),
        json: jsonEncodingOf(manifest.formatVersion),
      });
    }
    const unknownSets = (options.sets ?? []).filter(
      (set) => !manifest.entities.some((e) => e.set === set && select(e)),
    );
    if (unknownSets.length)
      throw invalidOption(
        'sets',
        unknownSets,
        `sets the selected entities have in backup ${manifest.name} (${[...new Set(manifest.entities.filter(select).map((e) => e.set))].join(', ')})`,
      );
    if (selected === 0) {
      const held = manifest.entities.map((e) => `${e.entityType}@${e.set}`).join(', ') || 'nothing';
      throw new BackupError(
        'ENTITY_NOT_FOUND',
        `Nothing to restore: the selection (entities, sets) matches no entity set of backup ${manifest.name}, which holds ${held}. Check the entity names and sets you passed.`,
        {
          details: {
            backupId: manifest.id,
            held: manifest.entities.map((e) => ({ entity: e.entityType, set: e.set })),
          },
        },
      );
    }
    // Two archived sets written into one target (one entity's sets into one target set, or two entities into one
    // table of the target) would merge and overwrite each other: refused before anything is written.
    refuseSharedTargetSets(plans);
    if (problems.length)
      throw new BackupError(
        'SCHEMA_INCOMPATIBLE',
        `Nothing was restored from ${manifest.name}:\n- ${problems.join('\n- ')}`,
        { details: { problems, undeclared } },
      );
    await refuseTargetCollisions(context.runtime, plans);
    // An existing target table must have a column for every field written (lenient: the others are left out).
    await checkTargetColumns(context.runtime, plans, policy);
    const progress = new ProgressTracker('restore', manifest.name, options.onProgress, options.progressIntervalMs);
    progress.overallTotalRecords = plans.reduce((n, p) => n + (p.blocked ? 0 : p.item.itemCount), 0);
    // Provider packages load while the archive is checked (no connection, nothing created before validation ends).
    for (const source of new Set(plans.map((p) => p.schema.source)))
      context.runtime.preload(source).catch(() => undefined);
    if (validate) {
      // Every byte of the archive against the SHA-256 recorded at publish time (the compressed bytes: a fraction of
      // the work of inflating every entry). Only when they differ are the entries checked, to name the damaged one.
      const hashIssue = await archiveHashProblem(located, signal);
      const report = hashIssue
        ? await verifyEntries(reader, contents, { deep: false, ...(signal ? { signal } : {}) })
        : { issues: [] as string[] };
      if (hashIssue) report.issues.unshift(hashIssue);
      if (report.issues.length)
        throw new BackupError(
          'VALIDATION_FAILED',
          `Backup ${manifest.name} (${manifest.id}) failed validation; nothing was written:\n- ${report.issues.join('\n- ')}`,
          {
            details: { issues: report.issues },
          },
        );
    }
    throwIfAborted(signal);
    // A table without a primary key cannot be merged by key: refused before anything is written.
    if (!options.dryRun) await refuseKeylessMerges(context.runtime, plans, mode, options.replaceExisting ?? false);
    await refuseDynamicFields(context.runtime, plans);
    // A table created from the archived structure needs the tables its foreign keys name: checked before anything
    // is written (strict: the restore is refused; lenient: that table is reported Failed).
    if (options.structure !== false) await checkStructureRequirements(context.runtime, plans, policy);
    progress.overallTotalRecords = plans.reduce((n, p) => n + (p.blocked ? 0 : p.item.itemCount), 0);
    progress.emit('start');
    const bySource = new Map<string, Plan[]>();
    for (const p of plans) bySource.set(p.schema.source, [...(bySource.get(p.schema.source) ?? []), p]);
    const write = { ...options, mode, batchSize, batchBytes };
    const createdTables: { source: string; tables: string[] }[] = [];
    await forEachLimit([...bySource.entries()], maxConcurrency, async ([source, group]) => {
      const adapter = await context.runtime.adapter(source);
      const ordered = orderByDependencies(group);
      for (const plan of ordered.filter((p) => p.blocked))
        reports.push({
          ...emptyReport(plan.item, plan.targetSet, source, adapter.provider),
          status: 'Failed',
          failed: plan.item.itemCount,
          error: plan.blocked!,
        });
      const runnable = ordered.filter((p) => !p.blocked);
      // A dry run creates nothing: a target set whose table does not exist reads as empty.
      if (options.dryRun) {
        for (const plan of runnable) reports.push(await dryRunOne(adapter, reader, plan, write, progress));
        return;
      }
      // Into the same kind of store, missing tables are created from the archived native structure (inside the
      // restore's transaction where the store's DDL is transactional); into another, from the field types.
      const structured =
        options.structure !== false && adapter.structure
          ? runnable.filter((p) => replaysStructure(p, adapter.provider))
          : [];
      // Tables created here from the field types are dropped again if the restore fails: it leaves nothing behind.
      const madeHere: Plan[] = [];
      for (const plan of runnable) {
        if (structured.includes(plan)) continue;
        const existed = adapter.dropEntity ? (await adapter.describe(plan.schema, plan.targetSet)).exists : true;
        // Not Entity.ensure: its per-process memo would outlive a table dropped again below.
        await adapter.ensureEntity(plan.schema, plan.targetSet);
        if (!existed) madeHere.push(plan);
      }
      let created: string[];
      try {
        created = await restoreSource(adapter, reader, runnable, structured, write, progress, reports);
      } catch (e) {
        for (const plan of madeHere.reverse())
          await adapter.dropEntity?.(plan.schema, plan.targetSet).catch(() => undefined);
        throw e;
      }
      if (created.length) createdTables.push({ source, tables: created });
    });
    progress.emit('done');
    return {
      backupId: manifest.id,
      backupName: manifest.name,
      storageProfile: located.profile,
      status: restoreStatus(reports, options.dryRun ?? false),
      backupStatus: located.sidecar.status,
      ...finishReports(reports, plans),
      validated: validate,
      dryRun: options.dryRun ?? false,
      entities: reports,
      createdTables,
      ...(located.unavailableProfiles?.length ? { unavailableProfiles: located.unavailableProfiles } : {}),
      totalRecords: reports.reduce((n, r) => n + r.inserted + r.updated, 0),
      durationMs: performance.now() - started,
      drift: plans.flatMap((p) => (p.drift && !p.drift.identical ? [p.drift] : [])),
    };
  } catch (e) {
    if (signal?.aborted || isAbortError(e) || (e instanceof KoanError && e.code === 'ABORTED'))
      throw new BackupError(
        'ABORTED',
        `Restore of "${typeof ref === 'string' ? ref : ref.sidecar.name}" was cancelled${reports.length ? '; the source in flight was rolled back where its provider has transactions' : ''}`,
        {
          cause: e,
          details: { entities: reports },
        },
      );
    throw e;
  } finally {
    await reader.close();
  }
}

/** The status of a whole restore from its entities' (see {@link RestoreStatus}); `Skipped`: not in the archive. */
function restoreStatus(reports: readonly EntityRestoreReport[], dryRun: boolean): RestoreStatus {
  if (dryRun) return 'DryRun';
  const missed = reports.filter((r) => r.status === 'Failed' || r.status === 'Skipped').length;
  if (missed === 0) return 'Completed';
  return missed === reports.length ? 'Failed' : 'PartiallyCompleted';
}

/**
 * The report's `notInArchive` (the sets the archive lacks, with why) when there are any, and each written set's
 * `missingColumns` from its plan (lenient: fields its existing table has no column for).
 */
function finishReports(
  reports: EntityRestoreReport[],
  plans: readonly Plan[],
): { notInArchive?: RestoreReport['notInArchive'] } {
  for (const r of reports) {
    const plan = plans.find((p) => p.item.entityType === r.entityType && p.item.set === r.set);
    if (plan?.missingColumns?.length && r.status !== 'Skipped') r.missingColumns = [...plan.missingColumns];
  }
  const absent = reports
    .filter((r) => r.status === 'Skipped')
    .map((r) => ({ entity: r.entityType, set: r.set, reason: (r.error ?? '').replace(/^not in the archive: /, '') }));
  return absent.length ? { notInArchive: absent } : {};
}

/** Whether a restore of `plan` into a store of `provider` replays the archived native structure of its source. */
function replaysStructure(plan: Plan, provider: string): boolean {
  const { schema, archived, structure } = plan;
  return (
    structure !== undefined &&
    structure.structure.provider === provider &&
    plan.targetSet === plan.item.set &&
    (schema.table ?? schema.name) === (archived.table ?? archived.name) &&
    (schema.namespace ?? '') === (archived.namespace ?? '')
  );
}

/**
 * For every target source: the tables a restore would create from the archived structure whose foreign keys name a
 * table that is neither restored now nor in the target. Such a table cannot be recreated as captured (SQLite and
 * MariaDB declare foreign keys in CREATE TABLE; PostgreSQL would have to drop them): strict, the restore is refused
 * before anything is written; lenient, that entity set is reported `Failed`, with what it needs.
 */
async function checkStructureRequirements(
  runtime: DataRuntime,
  plans: Plan[],
  policy: 'strict' | 'lenient',
): Promise<void> {
  const problems: string[] = [];
  const sources = [...new Set(plans.filter((p) => !p.blocked).map((p) => p.schema.source))];
  for (const source of sources) {
    const adapter = await runtime.adapter(source);
    if (!adapter.structure) continue;
    const runnable = plans.filter((p) => !p.blocked && p.schema.source === source);
    const byStructure = new Map<SourceStructure, Plan[]>();
    for (const p of runnable)
      if (replaysStructure(p, adapter.provider))
        byStructure.set(p.structure!, [...(byStructure.get(p.structure!) ?? []), p]);
    const everyTarget = runnable.map((p) => ({ entity: p.schema, set: p.targetSet }));
    for (const [ss, group] of byStructure) {
      const unmet = await adapter.structure.unmetRequirements(ss.structure, everyTarget);
      for (const { target, missing } of unmet) {
        const index = plans.findIndex((p) => p.schema === target.entity && p.targetSet === target.set);
        const plan = plans[index];
        if (!plan || !group.includes(plan)) continue;
        const why = `${plan.schema.name}@${plan.targetSet}: its archived structure has foreign keys to ${missing.join(', ')}, which this restore does not write${plans.some((p) => p.blocked && missing.includes(p.schema.table ?? p.schema.name)) ? ' (it fails)' : ''} and the target does not have. Restore ${missing.length > 1 ? 'them' : 'it'} too, or into a database that has ${missing.length > 1 ? 'them' : 'it'}, or restore without the archived structure (structure: false; CLI --no-structure: tables from the field types, without foreign keys).`;
        if (policy === 'strict') problems.push(why);
        else plans[index] = { ...plan, blocked: why };
      }
    }
  }
  if (problems.length)
    throw new BackupError('SCHEMA_INCOMPATIBLE', `Nothing was restored:\n- ${problems.join('\n- ')}`, {
      details: { problems },
    });
}

/** The backup a restore reads: by id, by name (the newest completed one), by archive key, or an archive file. */
export function locateForRestore(
  context: BackupContext,
  ref: string,
  options: GlobalRestoreOptions,
): Promise<LocatedBackup> {
  return locateBackup(context, options.backupId ?? ref, {
    ...(options.storageProfile ? { storageProfile: options.storageProfile } : {}),
    allowPartial: options.backupId !== undefined,
    ...(options.allowUnreachableProfiles ? { allowUnreachableProfiles: true } : {}),
    ...(options.archivePath ? { archivePath: options.archivePath } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

function emptyReport(item: EntityManifest, targetSet: string, source: string, provider: string): EntityRestoreReport {
  return {
    entityType: item.entityType,
    set: item.set,
    targetSet,
    source,
    provider,
    status: 'Restored',
    inserted: 0,
    updated: 0,
    skipped: 0,
    failed: 0,
    removed: 0,
    droppedFields: [],
    durationMs: 0,
  };
}

type WriteOptions = GlobalRestoreOptions & { mode: ImportMode; batchSize: number; batchBytes: number };

function recordStream(
  reader: ZipReader,
  plan: Plan,
  options: WriteOptions,
  report: EntityRestoreReport,
  dropped: Set<string>,
  progress: ProgressTracker,
) {
  return decodeLines(
    reader,
    plan,
    options,
    makeConverter(plan, dropped),
    () => report.skipped++,
    (bytes) => {
      progress.bytes += bytes;
    },
    options.signal,
  );
}

/**
 * Keeps one item of `source` in preparation while the consumer works on the current one: the next batch is read
 * and decoded while the store ingests this one (a COPY or LOAD DATA round trip leaves this thread idle otherwise).
 * Stopping early waits for the item in preparation, then closes the source.
 */
async function* readAhead<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let next = it.next();
  let done = false;
  try {
    for (;;) {
      const r = await next;
      if (r.done) {
        done = true;
        return;
      }
      next = it.next();
      next.catch(() => {}); // its failure is raised when it is awaited
      yield r.value;
    }
  } finally {
    if (!done) {
      await next.catch(() => undefined);
      await it.return?.(undefined);
    }
  }
}

/** Whether an entity can take the JSON-lines fast path: bulk on, the store offers it, nothing to convert. */
function jsonLinesPath(tx: DataWriter, plan: Plan, options: WriteOptions, dropped: Set<string>): boolean {
  return (
    options.optimizeForBulkInsert !== false &&
    tx.importJsonLines !== undefined &&
    (tx.jsonLinesSupported?.(plan.schema) ?? true) &&
    makeConverter(plan, dropped) === undefined &&
    JSON.stringify(plan.archived.fields) === JSON.stringify(plan.schema.fields) &&
    plan.archived.key === plan.schema.key
  );
}

/** The entry's lines in batches, with the same end checks as decoding: every line counted, the last one terminated. */
async function* rawLines(
  reader: ZipReader,
  plan: Plan,
  { batchSize, batchBytes }: Pick<WriteOptions, 'batchSize' | 'batchBytes'>,
  onBytes: (bytes: number) => void,
  signal: AbortSignal | undefined,
): AsyncGenerator<{ firstLine: number; lines: string[] }> {
  const file = plan.item.storageFile;
  let count = 0;
  let unterminated = false;
  let done = false;
  let contentSha256: string | undefined;
  let reported = 0;
  // Archives that record the stored bytes' hash are checked on those (a fifth of the bytes); the CRC-32 still
  // covers the decompressed ones.
  const stored = plan.item.storedHash ? createHash('sha256') : undefined;
  const expected = plan.item.storedHash ?? plan.item.contentHash;
  for await (const batch of reader.lines(file, {
    batchSize,
    maxBatchBytes: batchBytes,
    hashContent: !stored,
    ...(stored ? { onStored: (chunk: Buffer) => stored.update(chunk) } : {}),
    ...(signal ? { signal } : {}),
    onDone: (d) => {
      done = true;
      unterminated = d.missingFinalNewline;
      contentSha256 = d.sha256;
    },
  })) {
    // Inflated bytes read so far (whole chunks, so a little ahead of the lines handed over until the end).
    onBytes(batch.bytesRead - reported);
    reported = batch.bytesRead;
    count += batch.lines.length;
    yield batch;
  }
  if (unterminated)
    throw new BackupError('ARCHIVE_CORRUPT', `${file}: the last line is not terminated; the entry is truncated`, {
      details: { entry: file },
    });
  // Checked as the entry is read too (a restore without validateBeforeRestore): the source's transaction rolls back.
  const sha256 = stored ? stored.digest('hex') : contentSha256;
  if (done && sha256 !== expected)
    throw new BackupError(
      'ARCHIVE_CORRUPT',
      `${file}: SHA-256 ${sha256} of its ${plan.item.storedHash ? 'stored bytes' : 'bytes'} differs from the manifest's ${expected}; the entry changed after the backup`,
      { details: { entry: file } },
    );
  if (count !== plan.item.itemCount)
    throw new BackupError(
      'ARCHIVE_CORRUPT',
      `${file}: ${count} lines, but the manifest records ${plan.item.itemCount}`,
      {
        details: { entry: file },
      },
    );
}

/** A fast-path failure, pinned to the first line that does not parse when there is one. */
function lineError(plan: Plan, batch: { firstLine: number; lines: string[] }, cause: unknown): unknown {
  const file = plan.item.storageFile;
  for (let i = 0; i < batch.lines.length; i++) {
    try {
      const value = JSON.parse(batch.lines[i]!) as unknown;
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not a JSON object');
      decodeRecord(plan.archived, value as Record<string, unknown>, plan.json);
    } catch (e) {
      return new BackupError(
        'ARCHIVE_CORRUPT',
        `${file} line ${batch.firstLine + i}: ${(e as Error).message}; nothing of ${plan.schema.name} was kept`,
        {
          cause: e,
          details: { entry: file, line: batch.firstLine + i },
        },
      );
    }
  }
  return cause;
}

/**
 * A streamed import's failure about one line (`details.line`, 0-based), named by the entry and its 1-based line:
 * the line is read again and decoded, so a line that does not decode is reported as a corrupt archive (as the
 * batch path does) and a line the store refused keeps the store's error code.
 */
async function streamLineError(reader: ZipReader, plan: Plan, e: unknown): Promise<unknown> {
  if (!(e instanceof KoanError)) return e;
  if (e.code === 'FOREIGN_KEY_VIOLATION' && e.details.key === undefined) return foreignKeyRecord(reader, plan, e);
  if (typeof e.details.line !== 'number') return e;
  const index = e.details.line;
  const file = plan.item.storageFile;
  let decodeError: unknown;
  await findLine(reader, plan, (line, i) => {
    if (i !== index) return false;
    try {
      decodeLine(plan, line);
    } catch (d) {
      decodeError = d;
    }
    return true;
  });
  return new BackupError(
    decodeError ? 'ARCHIVE_CORRUPT' : e.code,
    `${file} line ${index + 1}: ${e.message.replace(/ \(line \d+\)$/, '')}; nothing of ${plan.schema.name} was kept`,
    { cause: e, details: { ...e.details, entry: file, line: index + 1 } },
  );
}

/**
 * A foreign-key failure of a streamed import names the child's values (`details.match`), not its record: the entry
 * is read again for the first record with those values, so the error names its key and line.
 */
async function foreignKeyRecord(reader: ZipReader, plan: Plan, e: KoanError): Promise<unknown> {
  const match = e.details.match as Record<string, string> | undefined;
  if (!match) return e;
  const columns = Object.entries(match);
  let found: { record: DataRecord; index: number } | undefined;
  await findLine(reader, plan, (line, index) => {
    let record: DataRecord;
    try {
      record = decodeLine(plan, line);
    } catch {
      return false;
    }
    if (!columns.every(([c, v]) => String(record[c]) === v)) return false;
    found = { record, index };
    return true;
  });
  if (!found) return e; // the archive cannot name it: the store's error stands
  const key = describeKey(plan.schema, found.record);
  const file = plan.item.storageFile;
  const line = found.index + 1;
  return new DataError(
    'FOREIGN_KEY_VIOLATION',
    `${e.message.replace('record (unknown key)', `record ${JSON.stringify(key)}`)} (${file} line ${line})`,
    { cause: e, details: { ...e.details, key, entry: file, line } },
  );
}

/** Reads the entry's lines again until `visit(line, 0-based index)` returns true (only on the failure path). */
async function findLine(reader: ZipReader, plan: Plan, visit: (line: string, index: number) => boolean): Promise<void> {
  try {
    for await (const batch of reader.lines(plan.item.storageFile, { batchSize: 1000 }))
      for (let i = 0; i < batch.lines.length; i++) if (visit(batch.lines[i]!, batch.firstLine - 1 + i)) return;
  } catch {
    // an entry that cannot be read again names nothing more
  }
}

/** One archive line decoded with the archived schema; throws when it does not parse or has unknown fields. */
function decodeLine(plan: Plan, line: string): DataRecord {
  const { record, unknown } = decodeRecord(plan.archived, JSON.parse(line) as Record<string, unknown>, plan.json);
  if (unknown.length) throw new Error(`fields not in the archived schema: ${unknown.join(', ')}`);
  return record;
}

/** Adds one write's counts to the entity's report: expired records (TTL passed) count as skipped. */
function tally(report: EntityRestoreReport, r: ImportResult): void {
  report.inserted += r.inserted;
  report.updated += r.updated;
  if (r.expired) {
    report.skipped += r.expired;
    report.expired = (report.expired ?? 0) + r.expired;
  }
}

/** Counts what a restore would do: reads every record (so decoding, drift and transforms are exercised), writes nothing. */
async function dryRunOne(
  adapter: DataAdapter,
  reader: ZipReader,
  plan: Plan,
  options: WriteOptions,
  progress: ProgressTracker,
): Promise<EntityRestoreReport> {
  const t0 = performance.now();
  const { schema, targetSet, item } = plan;
  const report: EntityRestoreReport = {
    ...emptyReport(item, targetSet, schema.source, adapter.provider),
    status: 'DryRun',
  };
  const dropped = new Set<string>();
  const current = { entity: schema.name, set: targetSet, records: 0, totalRecords: item.itemCount };
  progress.emit('entity-start', current);
  try {
    if (options.replaceExisting) report.removed = await adapter.count(schema, targetSet);
    else if (schema.keyless && options.mode === 'upsert' && (await holdsRecords(adapter, schema, targetSet)))
      throw new Error(keylessMergeProblem(plan));
    for await (const batch of recordStream(reader, plan, options, report, dropped, progress)) {
      // Rows without a key are appended (or the table is emptied first): nothing to look up.
      if (options.replaceExisting || schema.keyless) report.inserted += batch.length;
      else {
        const existing = await countExisting(adapter, schema, targetSet, batch);
        report.inserted += batch.length - existing;
        if (options.mode === 'insert') report.failed += existing;
        else report.updated += existing;
      }
      current.records += batch.length;
      progress.overallRecords += batch.length;
      progress.emit('progress', current);
    }
    if (report.failed)
      report.error = `${report.failed} records already exist: an insert-only restore would fail${adapter.capabilities.transactions ? ' and write nothing' : ' (this store has no transactions: records written before the first clash would stay)'}`;
  } catch (e) {
    if (options.signal?.aborted || isAbortError(e)) throw e;
    report.status = 'Failed';
    report.error = (e as Error).message;
  }
  report.droppedFields = [...dropped];
  report.durationMs = performance.now() - t0;
  progress.emit('entity-done', current);
  return report;
}

/**
 * Writes the entities of one source in one transaction (where the adapter has them): the missing tables of
 * `structured` plans are created from their archived native structure first, with `replaceExisting` the target sets
 * are cleared (children before parents), then each entity is written, parents first, and last the adapter finishes
 * the tables (indexes and foreign keys of created tables, sequences advanced past the restored values). Returns the
 * tables created from the structure.
 */
async function restoreSource(
  adapter: DataAdapter,
  reader: ZipReader,
  plans: readonly Plan[],
  structured: readonly Plan[],
  options: WriteOptions,
  progress: ProgressTracker,
  out: EntityRestoreReport[],
): Promise<string[]> {
  const signal = options.signal;
  const reports = plans.map((p) => emptyReport(p.item, p.targetSet, p.schema.source, adapter.provider));
  out.push(...reports);
  const dropped = plans.map(() => new Set<string>());
  let inFlight = -1;
  // An upsert into a set that is empty (or cleared by replaceExisting) is an insert: archive keys are unique, so
  // the store can take its plain bulk path (COPY, LOAD DATA) instead of merging; a duplicate key in a damaged
  // archive then fails loudly instead of merging silently. Only the first entity written into a target counts.
  const emptyTargets = new Set<string>();
  const target = (p: Plan) => `${p.schema.source}\u0000${p.schema.table ?? p.schema.name}\u0000${p.targetSet}`;
  if (options.mode === 'upsert')
    for (const p of plans)
      if (options.replaceExisting || !(await holdsRecords(adapter, p.schema, p.targetSet))) emptyTargets.add(target(p));
  // Structured plans grouped by the archived structure they replay (an archive may hold several sources).
  const byStructure = new Map<SourceStructure, Plan[]>();
  for (const p of structured) byStructure.set(p.structure!, [...(byStructure.get(p.structure!) ?? []), p]);
  const targetsOf = (ps: readonly Plan[]): StructureTarget[] => ps.map((p) => ({ entity: p.schema, set: p.targetSet }));
  const created: string[] = [];
  const createdBy = new Map<SourceStructure, string[]>();
  try {
    await adapter.transaction(
      async (tx: DataWriter) => {
        for (const [ss, ps] of byStructure) {
          const made = await adapter.structure!.createMissing(tx, ss.structure, targetsOf(ps));
          createdBy.set(ss, made);
          created.push(...made);
        }
        // Parents are written first; deferring the store's foreign-key checks to the commit also lets cycles and
        // self-references to later rows load. The adapter checks before committing and names a violating record.
        await tx.deferConstraints?.();
        if (options.replaceExisting)
          for (let i = plans.length - 1; i >= 0; i--)
            reports[i]!.removed = await tx.clear(plans[i]!.schema, plans[i]!.targetSet);
        for (let i = 0; i < plans.length; i++) {
          inFlight = i;
          const plan = plans[i]!;
          const report = reports[i]!;
          const t0 = performance.now();
          const current = {
            entity: plan.schema.name,
            set: plan.targetSet,
            records: 0,
            totalRecords: plan.item.itemCount,
          };
          progress.emit('entity-start', current);
          const intoEmpty = emptyTargets.delete(target(plan));
          const importOptions = {
            mode: intoEmpty ? ('insert' as const) : options.mode,
            bulk: options.optimizeForBulkInsert ?? true,
            json: plan.json,
            ...(signal ? { signal } : {}),
          };
          const counted = (n: number, r: ImportResult | undefined) => {
            if (r) tally(report, r);
            current.records += n;
            progress.overallRecords += n;
            progress.emit('progress', current);
          };
          const entryLines = () =>
            rawLines(
              reader,
              plan,
              options,
              (n) => {
                progress.bytes += n;
              },
              signal,
            );
          const asLines = jsonLinesPath(tx, plan, options, dropped[i]!);
          if (asLines && tx.importJsonLineStream && importOptions.mode === 'insert') {
            // One call for the whole entity: the store ingests while the next lines are read.
            const batches = async function* () {
              for await (const lines of entryLines()) {
                throwIfAborted(signal);
                yield lines.lines;
                counted(lines.lines.length, undefined);
              }
            };
            try {
              tally(report, await tx.importJsonLineStream(plan.schema, plan.targetSet, batches(), importOptions));
            } catch (e) {
              throw await streamLineError(reader, plan, e);
            }
          } else if (asLines) {
            // The store parses the archive's lines itself: no record objects in JS.
            for await (const lines of readAhead(entryLines())) {
              throwIfAborted(signal);
              let r: { inserted: number; updated: number } | undefined;
              try {
                r = lines.lines.length
                  ? await tx.importJsonLines!(plan.schema, plan.targetSet, lines.lines, importOptions)
                  : undefined;
              } catch (e) {
                throw lineError(plan, lines, e);
              }
              counted(lines.lines.length, r);
            }
          } else
            for await (const batch of readAhead(recordStream(reader, plan, options, report, dropped[i]!, progress))) {
              throwIfAborted(signal);
              counted(
                batch.length,
                batch.length ? await tx.importBatch(plan.schema, plan.targetSet, batch, importOptions) : undefined,
              );
            }
          report.droppedFields = [...dropped[i]!];
          report.durationMs = performance.now() - t0;
          progress.emit('entity-done', current);
        }
        inFlight = -1;
        if (adapter.structure) {
          // Indexes, foreign keys and sequences of the created tables; sequences of every other table advanced past
          // the restored values, so the application's next insert with a default id does not collide.
          for (const [ss, ps] of byStructure)
            await adapter.structure.finish(tx, ss.structure, targetsOf(ps), createdBy.get(ss) ?? []);
          const rest = plans.filter((p) => !structured.includes(p));
          if (rest.length) await adapter.structure.finish(tx, undefined, targetsOf(rest), []);
        }
      },
      signal ? { signal } : {},
    );
    return created;
  } catch (e) {
    // Tables created outside the transaction (stores whose DDL commits) are dropped again: nothing half-made stays.
    if (created.length) await adapter.structure?.discardCreated?.(created).catch(() => undefined);
    const rolledBack = adapter.capabilities.transactions;
    const failedPlan = plans[inFlight];
    for (let i = 0; i < plans.length; i++) {
      const report = reports[i]!;
      if (i === inFlight) {
        report.status = 'Failed';
        report.error =
          (e as Error).message +
          (rolledBack ? '' : ' (this provider has no transactions: records written before the failure remain)');
      } else if (rolledBack || i > inFlight) {
        report.status = 'Failed';
        report.error = rolledBack
          ? `rolled back: ${failedPlan?.schema.name ?? 'the source'} failed in the same transaction`
          : 'not restored: an earlier entity of its source failed';
      } else continue;
      report.failed = plans[i]!.item.itemCount - report.skipped;
      if (rolledBack || i > inFlight) {
        report.inserted = 0;
        report.updated = 0;
      }
    }
    if (signal?.aborted || isAbortError(e) || (e instanceof KoanError && e.code === 'ABORTED')) throw e;
    const where = failedPlan
      ? `${failedPlan.schema.name}@${failedPlan.targetSet}`
      : `the entities of ${plans.map((p) => p.schema.name).join(', ')}`;
    // A value or key the target cannot hold keeps its own code (scripts branch on it), with what it named.
    const cause = e instanceof KoanError ? e : undefined;
    const refusal = cause && REFUSALS.has(cause.code) ? cause : undefined;
    throw new BackupError(
      refusal?.code ?? 'RESTORE_FAILED',
      `Restoring ${where} failed${rolledBack ? '; everything this restore wrote into its target was rolled back' : ''}: ${(e as Error).message}`,
      {
        cause: e,
        details: {
          ...(refusal ? refusal.details : {}),
          entity: failedPlan?.schema.name,
          set: failedPlan?.targetSet,
          entities: out,
          ...(cause ? { causeCode: cause.code } : {}),
        },
      },
    );
  }
}

/** Codes of a target's refusal of a value or a key: a restore that fails on one reports that code, not its own. */
const REFUSALS: ReadonlySet<string> = new Set(['UNSUPPORTED_VALUE', 'UNSUPPORTED_KEY']);

/** Restores one entity's sets from the newest completed backup named `name`. */
export function restoreEntity(
  context: BackupContext,
  entity: Entity,
  name: string,
  options: RestoreOptions = {},
): Promise<RestoreReport> {
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

/**
 * Restores every entity of a backup (filtered), each where {@link resolveRestoreTarget} puts it: the entity this
 * application declares under that name, else the archived schema in `targetSource` (or in the archived source when it
 * is configured). Entity names the backup does not hold are refused before anything is read (`ENTITY_NOT_FOUND`).
 */
export async function restoreAllEntities(
  context: BackupContext,
  ref: string | LocatedBackup,
  options: GlobalRestoreOptions = {},
): Promise<RestoreReport> {
  if (options.targetSet !== undefined) assertSetName(options.targetSet);
  // A backup the caller has already located (the CLI, to confirm --replace against it) is restored as it is.
  const located = typeof ref === 'string' ? await locateForRestore(context, ref, options) : ref;
  checkRestoreSelection(located.sidecar, options);
  return runRestore(
    context,
    located,
    (item) =>
      matchesFilter(
        { name: item.entityType, provider: item.provider },
        {
          ...(options.includeEntityTypes ? { includeEntityTypes: options.includeEntityTypes } : {}),
          ...(options.excludeEntityTypes ? { excludeEntityTypes: options.excludeEntityTypes } : {}),
        },
      ),
    (item, snapshot) => resolveRestoreTarget(context, item, snapshot, options),
    options,
  );
}
