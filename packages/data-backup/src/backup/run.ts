import { createHash } from 'node:crypto';
import { type DataAdapter, DataError, type EntitySchema, KoanError } from '@koan/data';
import {
  type Consistency,
  type DataReader,
  encodeRecordLine,
  isAbortError,
  type StoreDescription,
  throwIfAborted,
} from '@koan/data/adapter-kit';
import type { EntryStats } from '../archive/index.js';
import type { BackupContext } from '../context.js';
import { BackupError } from '../errors.js';
import { type BackupManifest, type BackupSidecar, backupKeys, entityEntryName, uuidv7 } from '../manifest.js';
import { ProgressTracker } from '../progress.js';
import { type BackupTarget, forEachLimit } from '../select.js';
import { ArchiveAssembler } from './assembler.js';
import { type Destination, destinationOf } from './destination.js';
import { type BackupResult, type GlobalBackupOptions, type Resolved, resolveOptions } from './options.js';

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
  throwIfAborted(options.signal);
  return new BackupRun(context, r, targets, options).run();
}

/**
 * One backup as it runs, in phases: plan the progress totals, export the entity sets into the archive, assemble the
 * manifest (and the closing entries), publish. The archive upload starts with the run and reads what the phases write.
 */
class BackupRun {
  readonly #context: BackupContext;
  readonly #r: Resolved;
  readonly #targets: readonly BackupTarget[];
  readonly #signal: AbortSignal | undefined;
  readonly #id: string;
  readonly #destination: Destination;
  readonly #started = performance.now();
  readonly #progress: ProgressTracker;
  readonly #archive: ArchiveAssembler;
  readonly #upload: Promise<{ size: number }>;
  #uploadError: unknown;
  /** Entity sets go through a temp spool (see {@link ArchiveAssembler.addEntityEntry}). */
  readonly #spool: boolean;
  #firstError: unknown;
  /** The progress total of each target that has one. */
  readonly #totals = new Map<BackupTarget, number>();

  constructor(context: BackupContext, r: Resolved, targets: readonly BackupTarget[], options: GlobalBackupOptions) {
    this.#context = context;
    this.#r = r;
    this.#targets = targets;
    this.#signal = options.signal;
    const createdAt = new Date();
    this.#id = uuidv7(createdAt.getTime());
    this.#destination = destinationOf(context, r.profile, backupKeys(r.name, this.#id, createdAt), options.output);
    this.#progress = new ProgressTracker('backup', r.name, options.onProgress, options.progressIntervalMs);
    const header = {
      id: this.#id,
      name: r.name,
      description: options.description,
      tags: options.tags ?? [],
      createdAt,
      storageProfile: this.#destination.profile,
      started: this.#started,
    };
    this.#archive = new ArchiveAssembler(r, header, options.omitted);
    const writer = this.#archive.writer;
    this.#upload = this.#destination.put(writer.output, this.#signal);
    this.#upload.catch((e) => {
      this.#uploadError = e;
      writer.abort(e instanceof Error ? e : new Error(String(e)));
    });
    this.#spool = r.maxConcurrency > 1 || (r.continueOnError && targets.length > 1);
  }

  async run(): Promise<BackupResult> {
    try {
      const readable = await this.#planTotals();
      await this.#exportEntries(readable);
      const manifest = await this.#archive.close();
      return await this.#publish(manifest);
    } catch (error) {
      throw await this.#abandon(error);
    }
  }

  /**
   * Fails the targets whose source could not be reached and, for a progress listener, counts what is to be read;
   * returns the targets to read.
   */
  async #planTotals(): Promise<BackupTarget[]> {
    // Totals exist for progress only: without a listener nothing is counted (an exact count is a full scan on
    // some stores, 1.3 s per million InnoDB rows). With one, each set is counted once, here; a set the store
    // estimates at ESTIMATE_ABOVE records or more takes the estimate instead, and the events say so.
    // Sources that could not be reached while the targets were listed: their entities fail here, up front.
    const progress = this.#progress;
    for (const t of this.#targets) if (t.unavailable) this.#failed(t, t.unavailable);
    const readable = this.#targets.filter((t) => !t.unavailable);
    if (progress.observed) {
      let total = 0;
      for (const t of readable) {
        const adapter = await this.#context.runtime.adapter(t.source);
        const n = await expectedRecords(adapter, t.entity.schema, t.set, progress);
        if (n !== undefined) this.#totals.set(t, n);
        total += n ?? 0;
      }
      progress.overallTotalRecords = total;
    }
    progress.emit('start');
    return readable;
  }

  /** Reads every target into the archive, source by source; fails the run when nothing could be backed up. */
  async #exportEntries(readable: readonly BackupTarget[]): Promise<void> {
    const r = this.#r;
    const bySource = new Map<string, BackupTarget[]>();
    for (const t of readable) bySource.set(t.source, [...(bySource.get(t.source) ?? []), t]);
    const sourceJobs = [...bySource.entries()];
    // `maxConcurrency` bounds the entity sets being read and compressed at once, across all sources (so memory stays
    // bounded: one batch plus one spool stream each). Each source is read inside one snapshot where it has them;
    // its entity sets share that snapshot's reader and take slots from the same pool.
    const slots = new Slots(r.maxConcurrency);
    await forEachLimit(sourceJobs, r.maxConcurrency, ([source, group]) => this.#exportSource(source, group, slots));
    await this.#archive.settled();
    throwIfAborted(this.#signal);
    if (!this.#archive.anyCompleted && this.#targets.length > 0)
      throw this.#firstError ?? new BackupError('BACKUP_FAILED', 'No entity could be backed up');
  }

  /** The entity sets of one source, read inside one snapshot, then the source's native structure. */
  async #exportSource(source: string, group: readonly BackupTarget[], slots: Slots): Promise<void> {
    const r = this.#r;
    const started = new Set<BackupTarget>();
    try {
      const adapter = await this.#context.runtime.adapter(source);
      const result: SourceResult = await adapter.readSnapshot(async (reader) => {
        await forEachLimit(group, r.maxConcurrency, (t) =>
          slots.run(() => {
            started.add(t);
            return this.#exportEntity(reader, reader.consistency, t);
          }),
        );
        return { consistency: reader.consistency };
      });
      this.#archive.addSource({ name: source, provider: adapter.provider, consistency: result.consistency });
      if (r.includeSchema && adapter.structure) {
        // The tables' own DDL, so a restore into the same kind of store recreates them exactly. What the
        // structure does not recreate (functions, triggers...) is named in the manifest, never dropped silently.
        const captured = group.filter((t) => this.#archive.isCompleted(t.entity.schema.name, t.set));
        if (captured.length) {
          const structure = await adapter.structure.capture(
            captured.map((t) => ({ entity: t.entity.schema, set: t.set })),
          );
          this.#archive.addStructure({ source, structure });
        }
      }
    } catch (e) {
      // The source failed as a whole (connecting, or its snapshot): each entity set not yet attempted fails with it.
      const pending = group.filter((t) => !started.has(t));
      if (pending.length === 0) throw e;
      for (const t of pending) this.#failed(t, e);
    }
  }

  /** One entity set into the archive; a failure is recorded (see {@link #failed}). */
  async #exportEntity(reader: DataReader, consistency: Consistency, target: BackupTarget): Promise<void> {
    const { entity, set } = target;
    const schema = entity.schema;
    const r = this.#r;
    const signal = this.#signal;
    const progress = this.#progress;
    const entryName = entityEntryName(schema.name, set);
    const t0 = performance.now();
    let records = 0;
    const base = entryBase(target, consistency);
    try {
      const store = await this.#describeStore(target);
      const current = { entity: schema.name, set, records: 0, totalRecords: this.#totals.get(target) };
      progress.emit('entity-start', current);
      const onBatch = (n: number, bytes: number) => {
        records += n;
        current.records = records;
        progress.overallRecords += n;
        progress.bytes += bytes;
        progress.emit('progress', current);
      };
      // json fields come as their exact text (JsonText), never rounded through JavaScript values.
      const exportOptions = { batchSize: r.batchSize, batchBytes: r.batchBytes, exactJson: true, signal };
      // Providers that can render archive-encoded lines themselves (PostgreSQL's COPY) skip JS encoding; their
      // lines are counted once, by the archive writer as it hashes them.
      const rendered = reader.exportJsonLines !== undefined && (reader.jsonLinesSupported?.(schema) ?? true);
      const lines =
        rendered && reader.exportJsonLines
          ? reader.exportJsonLines(schema, set, exportOptions)
          : encodeBatches(schema, reader.exportEntity(schema, set, exportOptions), onBatch);
      const entryOptions = { ...(signal ? { signal } : {}), ...(rendered ? { onChunk: onBatch } : {}) };
      const stats: EntryStats = await this.#archive.addEntityEntry(entryName, lines, entryOptions, this.#spool);
      this.#archive.completed(
        {
          ...base,
          itemCount: records,
          sizeBytes: stats.uncompressedBytes,
          compressedSizeBytes: stats.compressedBytes,
          contentHash: stats.sha256,
          storedHash: stats.storedSha256,
          status: 'Completed',
          durationMs: performance.now() - t0,
        },
        { entityType: schema.name, set, source: target.source, provider: target.provider, schema, store },
      );
      progress.emit('entity-done', { ...current, records });
    } catch (e) {
      this.#failed(target, e, t0, consistency);
    }
  }

  /** The target's table as the source has it; one that lacks a field of the entity fails (`SCHEMA_MISMATCH`). */
  async #describeStore(target: BackupTarget): Promise<StoreDescription> {
    const { entity, set } = target;
    const schema = entity.schema;
    // Nothing is created or changed in the source: a set whose table does not exist reads as empty. A table
    // that exists must hold every field of the entity (checked here, as creating it would have).
    const adapter = await this.#context.runtime.adapter(target.source);
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
    return store;
  }

  /**
   * Records `target` as failed with `e`; rethrows unless the backup goes on past failures (`continueOnError`, and
   * spooled entries: without spooling a failed entry may have left partial bytes in the archive stream).
   */
  #failed(target: BackupTarget, e: unknown, t0 = performance.now(), consistency: Consistency = 'fuzzy'): void {
    if (this.#signal?.aborted || this.#uploadError) throw e;
    this.#firstError ??= e;
    this.#archive.failed({
      ...entryBase(target, consistency),
      itemCount: 0,
      sizeBytes: 0,
      compressedSizeBytes: 0,
      contentHash: createHash('sha256').digest('hex'),
      status: 'Failed',
      errorMessage: (e as Error).message,
      durationMs: performance.now() - t0,
    });
    if (!this.#r.continueOnError || !this.#spool) throw e;
  }

  /** Ends the archive, checks what storage received and commits the backup (the sidecar last). */
  async #publish(manifest: BackupManifest): Promise<BackupResult> {
    const keys = this.#destination.keys;
    const archive = await this.#archive.writer.finish();
    const stored = await this.#upload;
    if (stored.size !== archive.bytes)
      throw new BackupError(
        'BACKUP_FAILED',
        `Storage reports ${stored.size} bytes for ${keys.archive}, but ${archive.bytes} were written`,
      );
    throwIfAborted(this.#signal);
    const sidecar: BackupSidecar = {
      ...manifest,
      timings: { totalMs: performance.now() - this.#started },
      archive: { key: keys.archive, sizeBytes: archive.bytes, sha256: archive.sha256 },
    };
    await this.#destination.commit(sidecar);
    this.#progress.emit('done');
    return sidecar;
  }

  /**
   * After `error`: stops the upload, removes what was written and records the `Failed` backup (profiles only);
   * returns the error to throw (`ABORTED` when cancelled, else `BACKUP_FAILED`).
   */
  async #abandon(error: unknown): Promise<BackupError> {
    const name = this.#r.name;
    this.#archive.writer.abort(error instanceof Error ? error : new Error(String(error)));
    await this.#upload.catch(() => undefined);
    await this.#destination.discard();
    if (this.#signal?.aborted || isAbortError(error) || (error instanceof KoanError && error.code === 'ABORTED'))
      return new BackupError('ABORTED', `Backup "${name}" was cancelled; nothing was published`, { cause: error });
    const message = error instanceof Error ? error.message : String(error);
    const failed: BackupSidecar = this.#archive.manifest({
      status: 'Failed',
      errorMessage: message,
      totalItemCount: 0,
      totalSizeBytes: 0,
      overallChecksum: createHash('sha256').digest('hex'),
    });
    await this.#destination.recordFailure(failed).catch(() => undefined);
    return new BackupError('BACKUP_FAILED', `Backup "${name}" failed: ${message}`, {
      cause: error,
      details: { backupId: this.#id, manifest: failed },
    });
  }
}

/** What every manifest entry of `target` says, whether it completed or failed. */
function entryBase(target: BackupTarget, consistency: Consistency) {
  return {
    entityType: target.entity.schema.name,
    set: target.set,
    source: target.source,
    provider: target.provider,
    keyType: target.entity.schema.keyType,
    storageFile: entityEntryName(target.entity.schema.name, target.set),
    consistency,
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
