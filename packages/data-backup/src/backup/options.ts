import { assertSetName } from '@koan/data/adapter-kit';
import { type ByteSize, batchBytesOption } from '../budget.js';
import type { BackupContext } from '../context.js';
import { assertWithin, BATCH_SIZE, COMPRESSION_LEVEL, MAX_CONCURRENCY } from '../limits.js';
import { assertBackupName, type BackupSidecar, type OmittedObject } from '../manifest.js';
import type { ProgressListener } from '../progress.js';
import type { EntityFilter } from '../select.js';

/** Options of every backup. */
export interface BackupOptions {
  readonly description?: string;
  readonly tags?: readonly string[];
  /** Storage profile to write to. Default: Koan.Backup.DefaultStorageProfile, else the default profile. */
  readonly storageProfile?: string;
  /** Records read per batch. Default Koan.Backup.DefaultBatchSize (1000). */
  readonly batchSize?: number;
  /** Bytes per batch (a number or `"8MiB"`): a batch closes at `batchSize` or at this. Default Koan.Backup.DefaultBatchBytes. */
  readonly batchBytes?: ByteSize;
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

/** The options of one backup, checked and with their defaults. */
export interface Resolved {
  readonly name: string;
  readonly batchSize: number;
  readonly batchBytes: number;
  readonly compress: boolean;
  readonly level: number;
  readonly includeSchema: boolean;
  readonly profile: string;
  readonly maxConcurrency: number;
  readonly continueOnError: boolean;
}

export function resolveOptions(context: BackupContext, name: string, options: GlobalBackupOptions): Resolved {
  assertBackupName(name);
  const batchSize = options.batchSize ?? context.config.defaultBatchSize;
  assertWithin('batchSize', batchSize, BATCH_SIZE);
  const batchBytes = batchBytesOption(options.batchBytes, context.config.defaultBatchBytes);
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
    batchBytes,
    compress: (options.compressData ?? true) && level > 0,
    level: Math.max(level, 1),
    includeSchema: options.includeSchemaSnapshot ?? true,
    profile,
    maxConcurrency,
    continueOnError: options.continueOnError ?? true,
  };
}
