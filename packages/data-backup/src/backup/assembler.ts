import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Consistency } from '@koan/data/adapter-kit';
import {
  type EntrySourceOptions,
  EntrySpool,
  type EntryStats,
  type SpooledEntry,
  ZipWriter,
} from '../archive/index.js';
import {
  type BackupManifest,
  CHECKSUMS_ENTRY,
  type ChecksumsFile,
  type EntityManifest,
  FORMAT_VERSION,
  MANIFEST_ENTRY,
  type OmittedObject,
  SCHEMAS_ENTRY,
} from '../manifest.js';
import type { SchemaSnapshot, SourceStructure } from '../verify.js';
import type { Resolved } from './options.js';

const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/** What the manifest says about the run itself, fixed when it starts. */
export interface ManifestHeader {
  readonly id: string;
  readonly name: string;
  readonly description: string | undefined;
  readonly tags: readonly string[];
  readonly createdAt: Date;
  /** The destination's `storageProfile`: the profile, or `file:<path>` / `stdout`. */
  readonly storageProfile: string;
  /** `performance.now()` when the run started (for `timings.totalMs`). */
  readonly started: number;
}

/** How a run ended, as its manifest says (shared by the published and the `Failed` outcome). */
export interface ManifestOutcome {
  readonly status: BackupManifest['status'];
  readonly errorMessage?: string;
  readonly totalItemCount: number;
  readonly totalSizeBytes: number;
  readonly overallChecksum: string;
}

/**
 * The archive of one backup as it is built: the ZIP writer, the entity entries (appended one at a time, in the order
 * they finish), their checksums, the schema snapshots and native structures, and what the manifest records about them
 * (entity sets, sources, omitted objects). It writes the closing entries: schemas, checksums, manifest.
 */
export class ArchiveAssembler {
  readonly writer: ZipWriter;
  readonly entities: EntityManifest[] = [];
  readonly #r: Resolved;
  readonly #header: ManifestHeader;
  readonly #checksums: Record<string, string> = {};
  /** Each entity set's schema as the backup saw it (`verification/schema-snapshots.json`). */
  readonly #snapshots: SchemaSnapshot[] = [];
  /** The native structure of each source whose adapter captures one (same-provider restores replay it). */
  readonly #structures: SourceStructure[] = [];
  readonly #omitted: OmittedObject[];
  readonly #sources = new Map<string, { name: string; provider: string; consistency: Consistency }>();
  #appendChain: Promise<unknown> = Promise.resolve();

  constructor(r: Resolved, header: ManifestHeader, omitted: readonly OmittedObject[] | undefined) {
    this.#r = r;
    this.#header = header;
    this.#omitted = [...(omitted ?? [])];
    this.writer = new ZipWriter({ compress: r.compress, level: r.level });
    // The upload reads `output` and sees its errors; this keeps an abort before the upload starts reading from being
    // an unhandled 'error' event.
    this.writer.output.on('error', () => undefined);
  }

  /** Runs `fn` after every append queued before it: entries go into the archive one at a time. */
  #append<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#appendChain.then(fn);
    this.#appendChain = next.catch(() => undefined);
    return next;
  }

  /**
   * Writes one entity set's lines as the entry `entryName`: with `spool`, compressed into a temp spool first (so
   * entity sets can be read at the same time, and a failed one leaves nothing in the archive), then appended in turn.
   */
  async addEntityEntry(
    entryName: string,
    lines: AsyncIterable<string | Uint8Array>,
    entryOptions: EntrySourceOptions,
    spool: boolean,
  ): Promise<EntryStats> {
    if (!spool) return this.#append(() => this.writer.addEntry(entryName, lines, entryOptions));
    const sp = await EntrySpool.create(entryName, { compress: this.#r.compress, level: this.#r.level });
    let spooled: SpooledEntry;
    try {
      spooled = await sp.write(lines, entryOptions);
    } catch (e) {
      await sp.discard();
      throw e;
    }
    try {
      return await this.#append(() => this.writer.addSpooled(spooled));
    } finally {
      await spooled.dispose();
    }
  }

  /** Records an entity set written by {@link addEntityEntry}: its manifest entry, checksum and schema snapshot. */
  completed(entry: EntityManifest & { readonly status: 'Completed' }, snapshot: SchemaSnapshot): void {
    if (this.#r.includeSchema) this.#snapshots.push(snapshot);
    this.#checksums[entry.storageFile] = entry.contentHash;
    this.entities.push(entry);
  }

  /** Records an entity set that failed. */
  failed(entry: EntityManifest): void {
    this.entities.push(entry);
  }

  /** Whether `set` of `entityType` is in the archive. */
  isCompleted(entityType: string, set: string): boolean {
    return this.entities.some((e) => e.status === 'Completed' && e.entityType === entityType && e.set === set);
  }

  get anyCompleted(): boolean {
    return this.entities.some((e) => e.status === 'Completed');
  }

  addSource(source: { name: string; provider: string; consistency: Consistency }): void {
    this.#sources.set(source.name, source);
  }

  /** A source's native structure; what it does not recreate is recorded as omitted. */
  addStructure(entry: SourceStructure): void {
    this.#structures.push(entry);
    for (const n of entry.structure.notCaptured)
      this.#omitted.push({ source: entry.source, name: n.name, kind: n.kind, reason: n.reason });
  }

  /** Resolves once every entity entry queued so far is in the archive (or failed). */
  settled(): Promise<unknown> {
    return this.#appendChain;
  }

  /**
   * Writes the closing entries, entity sets in order: the schema snapshots (unless left out), the checksums and the
   * manifest, which it returns.
   */
  async close(): Promise<BackupManifest> {
    const entities = this.entities;
    entities.sort((a, b) => a.storageFile.localeCompare(b.storageFile));
    if (this.#r.includeSchema) {
      this.#snapshots.sort((a, b) => `${a.entityType}@${a.set}`.localeCompare(`${b.entityType}@${b.set}`));
      this.#structures.sort((a, b) => a.source.localeCompare(b.source));
      const structures = this.#structures;
      const stats = await this.writer.addBuffer(
        SCHEMAS_ENTRY,
        JSON.stringify(
          { formatVersion: FORMAT_VERSION, entities: this.#snapshots, ...(structures.length ? { structures } : {}) },
          null,
          2,
        ),
      );
      this.#checksums[SCHEMAS_ENTRY] = stats.sha256;
    }
    const checksumsFile: ChecksumsFile = {
      algorithm: 'sha256',
      files: Object.fromEntries(Object.entries(this.#checksums).sort(([a], [b]) => a.localeCompare(b))),
    };
    const checksumsText = JSON.stringify(checksumsFile, null, 2);
    await this.writer.addBuffer(CHECKSUMS_ENTRY, checksumsText);
    const completed = entities.filter((e) => e.status === 'Completed');
    const partial = completed.length !== entities.length;
    const manifest = this.manifest({
      status: partial ? 'PartiallyCompleted' : 'Completed',
      ...(partial
        ? { errorMessage: `${entities.length - completed.length} of ${entities.length} entity sets failed` }
        : {}),
      totalItemCount: completed.reduce((n, e) => n + e.itemCount, 0),
      totalSizeBytes: completed.reduce((n, e) => n + e.sizeBytes, 0),
      overallChecksum: createHash('sha256').update(checksumsText).digest('hex'),
    });
    await this.writer.addBuffer(MANIFEST_ENTRY, JSON.stringify(manifest, null, 2));
    return manifest;
  }

  /** The manifest of this run, as it stands now (shared by the published and the `Failed` outcome). */
  manifest(outcome: ManifestOutcome): BackupManifest {
    const h = this.#header;
    const r = this.#r;
    const omitted = this.#omitted;
    return {
      formatVersion: FORMAT_VERSION,
      id: h.id,
      name: h.name,
      ...(h.description !== undefined ? { description: h.description } : {}),
      tags: [...h.tags],
      createdAt: h.createdAt.toISOString(),
      completedAt: new Date().toISOString(),
      status: outcome.status,
      ...(outcome.errorMessage !== undefined ? { errorMessage: outcome.errorMessage } : {}),
      storageProfile: h.storageProfile,
      entities: this.entities,
      ...(omitted.length ? { omitted } : {}),
      sources: [...this.#sources.values()].sort((a, b) => a.name.localeCompare(b.name)),
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
      timings: { totalMs: performance.now() - h.started },
      producer: { library: '@koan/data-backup', version: VERSION, node: process.version },
    };
  }
}
