import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { open, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import {
  assertSetName,
  type Consistency,
  type DataAdapter,
  DataError,
  type DataReader,
  type Entity,
  type EntitySchema,
  encodeRecordLine,
  isAbortError,
  KoanError,
  type StoreDescription,
  throwIfAborted,
} from '@koan/data';
import { EntrySpool, type EntryStats, type SpooledEntry, ZipWriter } from './archive/index.js';
import { writeSidecar } from './catalog.js';
import type { BackupContext } from './context.js';
import { BackupError } from './errors.js';
import { assertWithin, BATCH_SIZE, COMPRESSION_LEVEL, MAX_CONCURRENCY } from './limits.js';
import {
  assertBackupName,
  type BackupManifest,
  type BackupSidecar,
  backupKeys,
  CHECKSUMS_ENTRY,
  type ChecksumsFile,
  type EntityManifest,
  entityEntryName,
  FORMAT_VERSION,
  MANIFEST_ENTRY,
  type OmittedObject,
  SCHEMAS_ENTRY,
  uuidv7,
} from './manifest.js';
import { planBackup } from './plan.js';
import { type ProgressListener, ProgressTracker } from './progress.js';
import { type BackupTarget, type EntityFilter, forEachLimit } from './select.js';
import type { SourceStructure } from './verify.js';

const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/** Options of every backup. */
export interface BackupOptions {
  readonly description?: string;
  readonly tags?: readonly string[];
  /** Storage profile to write to. Default: Koan.Backup.DefaultStorageProfile, else the default profile. */
  readonly storageProfile?: string;
  /** Records read per batch. Default Koan.Backup.DefaultBatchSize (1000). */
  readonly batchSize?: number;
  /** Deflate entries (default true). `false` stores them uncompressed. */
  readonly compressData?: boolean;
  /** Deflate level 1-9 when compressing; 0 stores entries (like `compressData: false`). Default Koan.Backup.CompressionLevel (1). */
  readonly compressionLevel?: number;
  /**
   * Write `verification/schema-snapshots.json` (default true). Without it, restores decode with the
   * target entity's current schema and cannot detect schema drift.
   */
  readonly includeSchemaSnapshot?: boolean;
  /** Only these sets of the entity (default: every set that exists). */
  readonly sets?: readonly string[];
  /**
   * Write the archive here instead of a storage profile, like `pg_dump -f`: a file (written to a temporary name, then
   * renamed into place; relative to the runtime's working directory) or a stream (e.g. stdout). Nothing goes into the
   * catalog: the archive holds its own manifest (restore, validate and adopt read it). CLI `backup --output FILE|-`.
   */
  readonly output?: { readonly file: string } | { readonly stream: NodeJS.WritableStream };
  /** Cancels the backup: nothing is published (no archive, no sidecar) and temp files are removed. */
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressListener;
  /** Minimum milliseconds between `progress` events (phase changes are always reported). Default 250; 0 reports every batch. */
  readonly progressIntervalMs?: number;
}

/** Options of a whole-application backup. */
export interface GlobalBackupOptions extends BackupOptions, EntityFilter {
  /**
   * Entity sets read and compressed at the same time, across all sources (each into its own temp spool, appended to
   * the archive in turn), which bounds memory. Default 1: one entity after another, streamed straight into the archive; at most `MAX_CONCURRENCY.max` (64).
   */
  readonly maxConcurrency?: number;
  /**
   * Keep going when an entity fails (default true): the failure is recorded in the manifest and the
   * backup's status is `PartiallyCompleted`. With `false` the first failure fails the backup and nothing is published.
   */
  readonly continueOnError?: boolean;
  /** Also back up tables of the sources that no code declares (introspection). Default false. */
  readonly introspect?: boolean;
  /**
   * What the sources hold that this backup leaves out, with why (tables excluded by the user, views...): recorded in
   * the manifest's `omitted`. `planBackup` fills it; callers that pick their own targets may give it.
   */
  readonly omitted?: readonly OmittedObject[];
}

/** What a backup returns: the manifest plus where the archive is. */
export type BackupResult = BackupSidecar;

interface Resolved {
  readonly name: string;
  readonly batchSize: number;
  readonly compress: boolean;
  readonly level: number;
  readonly includeSchema: boolean;
  readonly profile: string;
  readonly maxConcurrency: number;
  readonly continueOnError: boolean;
}

function resolveOptions(context: BackupContext, name: string, options: GlobalBackupOptions): Resolved {
  assertBackupName(name);
  const batchSize = options.batchSize ?? context.config.defaultBatchSize;
  assertWithin('batchSize', batchSize, BATCH_SIZE);
  const level = options.compressionLevel ?? context.config.compressionLevel;
  assertWithin('compressionLevel', level, COMPRESSION_LEVEL, ' (store)');
  for (const set of options.sets ?? []) assertSetName(set);
  const maxConcurrency = options.maxConcurrency ?? 1;
  assertWithin('maxConcurrency', maxConcurrency, MAX_CONCURRENCY);
  const profile = context.profileName(options.storageProfile);
  context.storage.get(profile); // fails early, naming the profile, if it is not configured
  return {
    name,
    batchSize,
    compress: (options.compressData ?? true) && level > 0,
    level: Math.max(level, 1),
    includeSchema: options.includeSchemaSnapshot ?? true,
    profile,
    maxConcurrency,
    continueOnError: options.continueOnError ?? true,
  };
}

async function* encodeBatches(
  schema: EntitySchema,
  batches: AsyncIterable<Record<string, unknown>[]>,
  onBatch: (records: number, bytes: number) => void,
): AsyncGenerator<string> {
  for await (const batch of batches) {
    let text = '';
    for (const record of batch) text += `${encodeRecordLine(schema, record, 'text')}\n`;
    onBatch(batch.length, Buffer.byteLength(text));
    yield text;
  }
}

/** A counting semaphore: at most `limit` functions run at once. */
class Slots {
  readonly #limit: number;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#active++;
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    }
  }
}

interface SourceResult {
  readonly consistency: Consistency;
}

/**
 * Backs up the given entity sets into one archive and publishes it: archive first, sidecar last.
 * The sidecar is the commit marker, so a backup that did not finish is never listed as restorable.
 */
export async function runBackup(
  context: BackupContext,
  name: string,
  targets: readonly BackupTarget[],
  options: GlobalBackupOptions = {},
): Promise<BackupResult> {
  const r = resolveOptions(context, name, options);
  const signal = options.signal;
  throwIfAborted(signal);
  const createdAt = new Date();
  const id = uuidv7(createdAt.getTime());
  const destination = destinationOf(context, r.profile, backupKeys(name, id, createdAt), options.output);
  const keys = destination.keys;
  const started = performance.now();
  const progress = new ProgressTracker('backup', name, options.onProgress, options.progressIntervalMs);
  const entities: EntityManifest[] = [];
  const checksums: Record<string, string> = {};
  const snapshots: {
    entityType: string;
    set: string;
    source: string;
    provider: string;
    schema: EntitySchema;
    store: StoreDescription;
  }[] = [];
  const sources = new Map<string, { name: string; provider: string; consistency: Consistency }>();
  /** The native structure of each source whose adapter captures one (same-provider restores replay it). */
  const structures: SourceStructure[] = [];
  const omitted: OmittedObject[] = [...(options.omitted ?? [])];
  const writer = new ZipWriter({ compress: r.compress, level: r.level });
  // The upload reads `output` and sees its errors; this keeps an abort before the upload starts reading from being
  // an unhandled 'error' event.
  writer.output.on('error', () => undefined);
  const upload = destination.put(writer.output, signal);
  let uploadError: unknown;
  upload.catch((e) => {
    uploadError = e;
    writer.abort(e instanceof Error ? e : new Error(String(e)));
  });
  let appendChain: Promise<unknown> = Promise.resolve();
  const append = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = appendChain.then(fn);
    appendChain = next.catch(() => undefined);
    return next;
  };
  const spool = r.maxConcurrency > 1 || (r.continueOnError && targets.length > 1);
  let firstError: unknown;
  const totals = new Map<BackupTarget, number>();

  const entryBase = (target: BackupTarget, consistency: Consistency) => ({
    entityType: target.entity.schema.name,
    set: target.set,
    source: target.source,
    provider: target.provider,
    keyType: target.entity.schema.keyType,
    storageFile: entityEntryName(target.entity.schema.name, target.set),
    consistency,
  });

  const backupOne = async (reader: DataReader, consistency: Consistency, target: BackupTarget): Promise<void> => {
    const { entity, set } = target;
    const schema = entity.schema;
    const entryName = entityEntryName(schema.name, set);
    const t0 = performance.now();
    let records = 0;
    const base = entryBase(target, consistency);
    try {
      // Nothing is created or changed in the source: a set whose table does not exist reads as empty. A table
      // that exists must hold every field of the entity (checked here, as creating it would have).
      const adapter = await context.runtime.adapter(target.source);
      const store = await adapter.describe(schema, set);
      const missing =
        store.exists && store.columns.length
          ? Object.keys(schema.fields).filter((f) => !store.columns.some((c) => c.name === f))
          : [];
      if (missing.length)
        throw new DataError(
          'SCHEMA_MISMATCH',
          `[${adapter.provider}] ${store.location} lacks column(s) ${missing.join(', ')} of ${schema.name}: add them or migrate the table, or exclude the entity from the backup.`,
          { details: { entity: schema.name, set, missing } },
        );
      const current = { entity: schema.name, set, records: 0, totalRecords: totals.get(target) };
      progress.emit('entity-start', current);
      const onBatch = (n: number, bytes: number) => {
        records += n;
        current.records = records;
        progress.overallRecords += n;
        progress.bytes += bytes;
        progress.emit('progress', current);
      };
      // json fields come as their exact text (JsonText), never rounded through JavaScript values.
      const exportOptions = { batchSize: r.batchSize, exactJson: true, ...(signal ? { signal } : {}) };
      // Providers that can render archive-encoded lines themselves (PostgreSQL's COPY) skip JS encoding; their
      // lines are counted once, by the archive writer as it hashes them.
      const rendered = reader.exportJsonLines !== undefined && (reader.jsonLinesSupported?.(schema) ?? true);
      const lines =
        rendered && reader.exportJsonLines
          ? reader.exportJsonLines(schema, set, exportOptions)
          : encodeBatches(schema, reader.exportEntity(schema, set, exportOptions), onBatch);
      const entryOptions = { ...(signal ? { signal } : {}), ...(rendered ? { onChunk: onBatch } : {}) };
      let stats: EntryStats;
      if (spool) {
        const sp = await EntrySpool.create(entryName, { compress: r.compress, level: r.level });
        let spooled: SpooledEntry;
        try {
          spooled = await sp.write(lines, entryOptions);
        } catch (e) {
          await sp.discard();
          throw e;
        }
        try {
          stats = await append(() => writer.addSpooled(spooled));
        } finally {
          await spooled.dispose();
        }
      } else {
        stats = await append(() => writer.addEntry(entryName, lines, entryOptions));
      }
      if (r.includeSchema)
        snapshots.push({
          entityType: schema.name,
          set,
          source: target.source,
          provider: target.provider,
          schema,
          store,
        });
      checksums[entryName] = stats.sha256;
      entities.push({
        ...base,
        itemCount: records,
        sizeBytes: stats.uncompressedBytes,
        compressedSizeBytes: stats.compressedBytes,
        contentHash: stats.sha256,
        storedHash: stats.storedSha256,
        status: 'Completed',
        durationMs: performance.now() - t0,
      });
      progress.emit('entity-done', { ...current, records });
    } catch (e) {
      failed(target, e, t0, consistency);
    }
  };

  /**
   * Records `target` as failed with `e`; rethrows unless the backup goes on past failures (`continueOnError`, and
   * spooled entries: without spooling a failed entry may have left partial bytes in the archive stream).
   */
  const failed = (
    target: BackupTarget,
    e: unknown,
    t0 = performance.now(),
    consistency: Consistency = 'fuzzy',
  ): void => {
    if (signal?.aborted || uploadError) throw e;
    firstError ??= e;
    entities.push({
      ...entryBase(target, consistency),
      itemCount: 0,
      sizeBytes: 0,
      compressedSizeBytes: 0,
      contentHash: createHash('sha256').digest('hex'),
      status: 'Failed',
      errorMessage: (e as Error).message,
      durationMs: performance.now() - t0,
    });
    if (!r.continueOnError || !spool) throw e;
  };

  /** The manifest of this run, as it stands now (shared by the published and the `Failed` outcome). */
  const manifestOf = (outcome: {
    status: BackupManifest['status'];
    errorMessage?: string;
    totalItemCount: number;
    totalSizeBytes: number;
    overallChecksum: string;
  }): BackupManifest => ({
    formatVersion: FORMAT_VERSION,
    id,
    name,
    ...(options.description !== undefined ? { description: options.description } : {}),
    tags: [...(options.tags ?? [])],
    createdAt: createdAt.toISOString(),
    completedAt: new Date().toISOString(),
    status: outcome.status,
    ...(outcome.errorMessage !== undefined ? { errorMessage: outcome.errorMessage } : {}),
    storageProfile: destination.profile,
    entities,
    ...(omitted.length ? { omitted } : {}),
    sources: [...sources.values()].sort((a, b) => a.name.localeCompare(b.name)),
    verification: {
      totalItemCount: outcome.totalItemCount,
      totalSizeBytes: outcome.totalSizeBytes,
      checksumAlgorithm: 'sha256',
      overallChecksum: outcome.overallChecksum,
    },
    options: {
      compressData: r.compress,
      compressionLevel: r.level,
      batchSize: r.batchSize,
      includeSchemaSnapshot: r.includeSchema,
    },
    timings: { totalMs: performance.now() - started },
    producer: { library: '@koan/data-backup', version: VERSION, node: process.version },
  });

  try {
    // Totals exist for progress only: without a listener nothing is counted (an exact count is a full scan on
    // some stores, 1.3 s per million InnoDB rows). With one, each set is counted once, here; a set the store
    // estimates at ESTIMATE_ABOVE records or more takes the estimate instead, and the events say so.
    // Sources that could not be reached while the targets were listed: their entities fail here, up front.
    for (const t of targets) if (t.unavailable) failed(t, t.unavailable);
    const readable = targets.filter((t) => !t.unavailable);
    if (progress.observed) {
      let total = 0;
      for (const t of readable) {
        const n = await expectedRecords(await context.runtime.adapter(t.source), t.entity.schema, t.set, progress);
        if (n !== undefined) totals.set(t, n);
        total += n ?? 0;
      }
      progress.overallTotalRecords = total;
    }
    progress.emit('start');
    const bySource = new Map<string, BackupTarget[]>();
    for (const t of readable) bySource.set(t.source, [...(bySource.get(t.source) ?? []), t]);
    const sourceJobs = [...bySource.entries()];
    // `maxConcurrency` bounds the entity sets being read and compressed at once, across all sources (so memory stays
    // bounded: one batch plus one spool stream each). Each source is read inside one snapshot where it has them;
    // its entity sets share that snapshot's reader and take slots from the same pool.
    const slots = new Slots(r.maxConcurrency);
    await forEachLimit(sourceJobs, r.maxConcurrency, async ([source, group]) => {
      const started = new Set<BackupTarget>();
      try {
        const adapter = await context.runtime.adapter(source);
        const result: SourceResult = await adapter.readSnapshot(async (reader) => {
          await forEachLimit(group, r.maxConcurrency, (t) =>
            slots.run(() => {
              started.add(t);
              return backupOne(reader, reader.consistency, t);
            }),
          );
          return { consistency: reader.consistency };
        });
        sources.set(source, { name: source, provider: adapter.provider, consistency: result.consistency });
        if (r.includeSchema && adapter.structure) {
          // The tables' own DDL, so a restore into the same kind of store recreates them exactly. What the
          // structure does not recreate (functions, triggers...) is named in the manifest, never dropped silently.
          const captured = group.filter((t) =>
            entities.some((e) => e.status === 'Completed' && e.entityType === t.entity.schema.name && e.set === t.set),
          );
          if (captured.length) {
            const structure = await adapter.structure.capture(
              captured.map((t) => ({ entity: t.entity.schema, set: t.set })),
            );
            structures.push({ source, structure });
            for (const n of structure.notCaptured)
              omitted.push({ source, name: n.name, kind: n.kind, reason: n.reason });
          }
        }
      } catch (e) {
        // The source failed as a whole (connecting, or its snapshot): each entity set not yet attempted fails with it.
        const pending = group.filter((t) => !started.has(t));
        if (pending.length === 0) throw e;
        for (const t of pending) failed(t, e);
      }
    });
    await appendChain;
    throwIfAborted(signal);
    if (!entities.some((e) => e.status === 'Completed') && targets.length > 0)
      throw firstError ?? new BackupError('BACKUP_FAILED', 'No entity could be backed up');

    entities.sort((a, b) => a.storageFile.localeCompare(b.storageFile));
    if (r.includeSchema) {
      snapshots.sort((a, b) => `${a.entityType}@${a.set}`.localeCompare(`${b.entityType}@${b.set}`));
      structures.sort((a, b) => a.source.localeCompare(b.source));
      const stats = await writer.addBuffer(
        SCHEMAS_ENTRY,
        JSON.stringify(
          { formatVersion: FORMAT_VERSION, entities: snapshots, ...(structures.length ? { structures } : {}) },
          null,
          2,
        ),
      );
      checksums[SCHEMAS_ENTRY] = stats.sha256;
    }
    const checksumsFile: ChecksumsFile = {
      algorithm: 'sha256',
      files: Object.fromEntries(Object.entries(checksums).sort(([a], [b]) => a.localeCompare(b))),
    };
    const checksumsText = JSON.stringify(checksumsFile, null, 2);
    await writer.addBuffer(CHECKSUMS_ENTRY, checksumsText);
    const completed = entities.filter((e) => e.status === 'Completed');
    const partial = completed.length !== entities.length;
    const manifest = manifestOf({
      status: partial ? 'PartiallyCompleted' : 'Completed',
      ...(partial
        ? { errorMessage: `${entities.length - completed.length} of ${entities.length} entity sets failed` }
        : {}),
      totalItemCount: completed.reduce((n, e) => n + e.itemCount, 0),
      totalSizeBytes: completed.reduce((n, e) => n + e.sizeBytes, 0),
      overallChecksum: createHash('sha256').update(checksumsText).digest('hex'),
    });
    await writer.addBuffer(MANIFEST_ENTRY, JSON.stringify(manifest, null, 2));
    const archive = await writer.finish();
    const stored = await upload;
    if (stored.size !== archive.bytes)
      throw new BackupError(
        'BACKUP_FAILED',
        `Storage reports ${stored.size} bytes for ${keys.archive}, but ${archive.bytes} were written`,
      );
    throwIfAborted(signal);
    const sidecar: BackupSidecar = {
      ...manifest,
      timings: { totalMs: performance.now() - started },
      archive: { key: keys.archive, sizeBytes: archive.bytes, sha256: archive.sha256 },
    };
    await destination.commit(sidecar);
    progress.emit('done');
    return sidecar;
  } catch (error) {
    writer.abort(error instanceof Error ? error : new Error(String(error)));
    await upload.catch(() => undefined);
    await destination.discard();
    if (signal?.aborted || isAbortError(error) || (error instanceof KoanError && error.code === 'ABORTED'))
      throw new BackupError('ABORTED', `Backup "${name}" was cancelled; nothing was published`, { cause: error });
    const message = error instanceof Error ? error.message : String(error);
    const failed: BackupSidecar = manifestOf({
      status: 'Failed',
      errorMessage: message,
      totalItemCount: 0,
      totalSizeBytes: 0,
      overallChecksum: createHash('sha256').digest('hex'),
    });
    await destination.recordFailure(failed).catch(() => undefined);
    throw new BackupError('BACKUP_FAILED', `Backup "${name}" failed: ${message}`, {
      cause: error,
      details: { backupId: id, manifest: failed },
    });
  }
}

/** Where a backup's archive goes: a storage profile (with its catalog record), a file, or a stream. */
interface Destination {
  readonly keys: { readonly archive: string; readonly sidecar: string };
  /** What the manifest's `storageProfile` says: the profile, or `file:<path>` / `stdout`. */
  readonly profile: string;
  put(body: Readable, signal: AbortSignal | undefined): Promise<{ size: number }>;
  /** Publishes the backup (the sidecar is the commit marker); nothing for a file or stream. */
  commit(sidecar: BackupSidecar): Promise<void>;
  /** Removes a partly written archive. */
  discard(): Promise<void>;
  /** Records a failed backup in the catalog (profiles only). */
  recordFailure(failed: BackupSidecar): Promise<void>;
}

function destinationOf(
  context: BackupContext,
  profile: string,
  keys: { archive: string; sidecar: string },
  output: GlobalBackupOptions['output'],
): Destination {
  if (output && 'stream' in output) {
    const none = async () => {};
    return {
      keys: { archive: '-', sidecar: '-' },
      profile: 'stdout',
      async put(body, signal) {
        // Written chunk by chunk, honouring backpressure, and never ended: stdout stays usable for messages.
        let size = 0;
        for await (const chunk of body) {
          throwIfAborted(signal);
          size += (chunk as Buffer).length;
          if (!output.stream.write(chunk as Buffer)) await once(output.stream, 'drain');
        }
        return { size };
      },
      commit: none,
      discard: none,
      recordFailure: none,
    };
  }
  if (output) {
    // Written beside the target under a temporary name, synced, then renamed: never a half-written file at `file`.
    const file = resolve(context.runtime.cwd, output.file);
    const temp = join(dirname(file), `.${basename(file)}.${randomUUID()}.partial`);
    return {
      keys: { archive: file, sidecar: '-' },
      profile: `file:${file}`,
      async put(body, signal) {
        const handle = await open(temp, 'wx', 0o600);
        let size = 0;
        try {
          for await (const chunk of body) {
            throwIfAborted(signal);
            await handle.write(chunk as Buffer);
            size += (chunk as Buffer).length;
          }
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(temp, file);
        return { size };
      },
      commit: async () => {},
      discard: async () => {
        await rm(temp, { force: true });
      },
      recordFailure: async () => {},
    };
  }
  const driver = context.storage.get(profile);
  return {
    keys,
    profile,
    put: (body, signal) =>
      driver.put(keys.archive, body, { contentType: 'application/zip', ...(signal ? { signal } : {}) }),
    commit: (sidecar) => writeSidecar(driver, keys.sidecar, sidecar),
    discard: async () => {
      await driver.delete(keys.archive).catch(() => undefined);
    },
    recordFailure: (failed) => writeSidecar(driver, keys.sidecar, failed),
  };
}

/** Sets the store estimates at this many records or more are not counted for progress totals (a count scans). */
const ESTIMATE_ABOVE = 100_000;

/** The progress total of one set: the store's estimate for a large set, else an exact count; undefined on failure. */
async function expectedRecords(
  adapter: DataAdapter,
  schema: EntitySchema,
  set: string,
  progress: ProgressTracker,
): Promise<number | undefined> {
  const estimate = await adapter.estimateCount?.(schema, set).catch(() => undefined);
  if (estimate !== undefined && estimate >= ESTIMATE_ABOVE) {
    progress.totalsEstimated = true;
    return estimate;
  }
  return adapter.count(schema, set).catch(() => undefined);
}

/**
 * Backs up every set (or `options.sets`) of one entity. A source that cannot be reached fails the backup as any other
 * failure does: a `Failed` backup is recorded in the catalog and `BackupError` `BACKUP_FAILED` is thrown.
 */
export async function backupEntity(
  context: BackupContext,
  entity: Entity,
  name: string,
  options: BackupOptions = {},
): Promise<BackupResult> {
  resolveOptions(context, name, options); // bad options fail before the source is read
  const source = entity.schema.source;
  const bound = entity.runtime() === context.runtime ? entity : entity.withRuntime(context.runtime);
  let targets: BackupTarget[];
  try {
    const adapter = await context.runtime.adapter(source);
    const sets = options.sets ?? (await adapter.listSets(entity.schema));
    targets = [...new Set(sets.length ? sets : ['root'])].map((set) => ({
      entity: bound,
      set,
      source,
      provider: adapter.provider,
    }));
  } catch (e) {
    if (isAbortError(e) || options.signal?.aborted) throw e;
    // Recorded by runBackup as the entity's failure, so the catalog shows the Failed backup (nothing is published).
    const unavailable = e instanceof Error ? e : new Error(String(e));
    const provider = context.runtime.sources[source]?.provider ?? 'unknown';
    targets = (options.sets ?? ['root']).map((set) => ({ entity: bound, set, source, provider, unavailable }));
  }
  return runBackup(context, name, targets, { ...options, continueOnError: false });
}

/**
 * Backs up every discovered entity (filtered by the options) into one archive. What is left out is planned first
 * (`planBackup`): unknown selection values, and tables that cannot be backed up and are not excluded, fail before
 * anything is read; everything left out is recorded in the manifest's `omitted`.
 */
export async function backupAllEntities(
  context: BackupContext,
  name: string,
  options: GlobalBackupOptions = {},
): Promise<BackupResult> {
  resolveOptions(context, name, options); // bad options fail before any source is read
  const plan = await planBackup(context, options);
  return runBackup(context, name, plan.targets, { ...options, omitted: [...plan.omitted, ...(options.omitted ?? [])] });
}
