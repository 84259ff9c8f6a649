import { Readable } from 'node:stream';
import type { StorageDriver } from '@koan/storage';
import { BackupError } from './errors.js';
import {
  type BackupSidecar,
  type HealthStatus,
  type OmittedObject,
  SIDECAR_SUFFIX,
  sidecarSchema,
} from './manifest.js';

/** A backup found in the catalog (or an archive file read on its own), with where it lives. */
export interface LocatedBackup {
  readonly profile: string;
  readonly driver: StorageDriver;
  readonly sidecar: BackupSidecar;
  readonly sidecarKey: string;
  /**
   * Profiles that could not be listed while the backup was looked up by name with `allowUnreachableProfiles`: one of
   * them may hold a newer backup of that name. Callers say so.
   */
  readonly unavailableProfiles?: readonly {
    readonly profile: string;
    readonly code: string;
    readonly message: string;
  }[];
  /** Read from the archive's own manifest (no catalog record): there is no sidecar to store a validation in. */
  readonly fromArchive?: boolean;
}

/** One backup as the catalog lists it, built from its sidecar alone (the archive is never opened). */
export interface BackupInfo {
  readonly id: string;
  readonly name: string;
  readonly description?: string;
  readonly tags: readonly string[];
  readonly createdAt: string;
  readonly completedAt?: string;
  readonly status: BackupSidecar['status'];
  readonly errorMessage?: string;
  readonly storageProfile: string;
  /** Archive size in bytes (0 when nothing was published). */
  readonly sizeBytes: number;
  /** Uncompressed JSONL bytes. */
  readonly dataSizeBytes: number;
  readonly itemCount: number;
  readonly entityTypes: readonly string[];
  readonly providers: readonly string[];
  readonly healthStatus: HealthStatus;
  readonly lastValidatedAt?: string;
  readonly restorable: boolean;
  readonly sidecarKey: string;
  readonly archiveKey?: string;
  /** What the sources held that the backup left out, with why (the manifest's `omitted`); absent when nothing. */
  readonly omitted?: readonly OmittedObject[];
}

const MAX_SIDECAR_BYTES = 16 * 1024 * 1024;

/**
 * The storage key layout of a backup as `backupKeys` (manifest.ts) writes it: `<name>/<name>-YYYYMMDD-HHmmss-<id8>`
 * followed by `.zip` (the archive) or the sidecar suffix. `<name>` follows the backup name rule (`assertBackupName`).
 */
const BACKUP_KEY = new RegExp(
  `^([A-Za-z0-9][A-Za-z0-9._-]{0,127})/\\1-(\\d{8})-(\\d{6})-([0-9a-f]{8})(\\.zip|${SIDECAR_SUFFIX.replace(/[.]/g, '\\.')})$`,
);

/**
 * Splits a storage key that follows Koan's own backup key layout (see {@link BACKUP_KEY}); anything else (a file some
 * other application keeps in the same bucket or folder) is `undefined`. Maintenance only ever touches keys this accepts.
 */
export function parseBackupKey(key: string): { name: string; base: string; kind: 'archive' | 'sidecar' } | undefined {
  const m = BACKUP_KEY.exec(key);
  if (!m || m[1]!.includes('..')) return undefined;
  const suffix = m[5]!;
  return { name: m[1]!, base: key.slice(0, -suffix.length), kind: suffix === '.zip' ? 'archive' : 'sidecar' };
}

async function readSmall(stream: Readable, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > MAX_SIDECAR_BYTES) {
      stream.destroy();
      throw new BackupError('ARCHIVE_CORRUPT', `Sidecar ${key} is larger than 16 MiB: it is not a Koan manifest`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function readSidecar(driver: StorageDriver, key: string, signal?: AbortSignal): Promise<BackupSidecar> {
  const bytes = await readSmall(await driver.get(key, signal ? { signal } : {}), key);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new BackupError('ARCHIVE_CORRUPT', `Sidecar ${key} is not valid JSON: ${(e as Error).message}`, {
      cause: e,
      details: { key },
    });
  }
  const parsed = sidecarSchema.safeParse(json);
  if (!parsed.success)
    throw new BackupError(
      'ARCHIVE_CORRUPT',
      `Sidecar ${key} does not match the manifest schema: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`,
      {
        details: { key },
      },
    );
  return parsed.data;
}

export async function writeSidecar(
  driver: StorageDriver,
  key: string,
  sidecar: BackupSidecar,
  signal?: AbortSignal,
): Promise<void> {
  const body = Buffer.from(`${JSON.stringify(sidecar, null, 2)}\n`, 'utf8');
  await driver.put(key, Readable.from([body]), { contentType: 'application/json', ...(signal ? { signal } : {}) });
}

/** Health from the sidecar alone: failed or partial → Critical/Warning; a failed validation → Critical. */
export function healthOf(sidecar: BackupSidecar, attentionAfterMs: number, now = Date.now()): HealthStatus {
  if (sidecar.status === 'Failed' || sidecar.status === 'Cancelled') return 'Critical';
  if (sidecar.validation && !sidecar.validation.isValid) return 'Critical';
  if (sidecar.status === 'PartiallyCompleted') return 'Warning';
  if (sidecar.status === 'InProgress') return 'Unknown';
  if (!sidecar.validation) return now - Date.parse(sidecar.createdAt) > attentionAfterMs ? 'Warning' : 'Unknown';
  return sidecar.validation.healthStatus;
}

export function toBackupInfo(
  sidecar: BackupSidecar,
  profile: string,
  sidecarKey: string,
  attentionAfterMs: number,
): BackupInfo {
  const restorable =
    (sidecar.status === 'Completed' || sidecar.status === 'PartiallyCompleted') && sidecar.archive !== undefined;
  return {
    id: sidecar.id,
    name: sidecar.name,
    ...(sidecar.description !== undefined ? { description: sidecar.description } : {}),
    tags: sidecar.tags,
    createdAt: sidecar.createdAt,
    ...(sidecar.completedAt ? { completedAt: sidecar.completedAt } : {}),
    status: sidecar.status,
    ...(sidecar.errorMessage ? { errorMessage: sidecar.errorMessage } : {}),
    storageProfile: profile,
    sizeBytes: sidecar.archive?.sizeBytes ?? 0,
    dataSizeBytes: sidecar.verification.totalSizeBytes,
    itemCount: sidecar.verification.totalItemCount,
    entityTypes: [...new Set(sidecar.entities.map((e) => e.entityType))],
    providers: [...new Set(sidecar.entities.map((e) => e.provider))],
    healthStatus: healthOf(sidecar, attentionAfterMs),
    ...(sidecar.validation ? { lastValidatedAt: sidecar.validation.validatedAt } : {}),
    restorable,
    sidecarKey,
    ...(sidecar.archive ? { archiveKey: sidecar.archive.key } : {}),
    ...(sidecar.omitted?.length ? { omitted: sidecar.omitted } : {}),
  };
}

/** Sidecar reads in flight while a profile is listed: one round trip each, so latency, not bandwidth, bounds a scan. */
const SCAN_CONCURRENCY = 8;

/**
 * Every sidecar in a profile, read one small object each (up to {@link SCAN_CONCURRENCY} at once, yielded in listing
 * order); unreadable sidecars are reported, not hidden.
 */
export async function* scanProfile(
  driver: StorageDriver,
  signal?: AbortSignal,
  concurrency = SCAN_CONCURRENCY,
): AsyncGenerator<{ key: string; sidecar?: BackupSidecar; error?: Error }> {
  type Found = { key: string; sidecar?: BackupSidecar; error?: Error };
  const read = (key: string): Promise<Found> =>
    readSidecar(driver, key, signal).then(
      (sidecar) => ({ key, sidecar }),
      (e: unknown) => ({ key, error: e as Error }),
    );
  const pending: Promise<Found>[] = [];
  try {
    for await (const object of driver.list('', signal ? { signal } : {})) {
      if (!object.key.endsWith(SIDECAR_SUFFIX)) continue;
      pending.push(read(object.key));
      if (pending.length >= concurrency) yield await pending.shift()!;
    }
    while (pending.length) yield await pending.shift()!;
  } finally {
    // A consumer that stops early (or a failed listing) leaves no read unobserved.
    await Promise.allSettled(pending);
  }
}
