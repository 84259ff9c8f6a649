import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { StorageDriver } from '@koan/storage';
import { type RandomAccessSource, ZipReader } from './archive/index.js';
import { readSidecar, scanProfile } from './catalog.js';
import type { BackupContext } from './context.js';
import { BackupError } from './errors.js';
import { type BackupSidecar, SIDECAR_SUFFIX } from './manifest.js';

export interface LocatedBackup {
  readonly profile: string;
  readonly driver: StorageDriver;
  readonly sidecar: BackupSidecar;
  readonly sidecarKey: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isRestorable(s: BackupSidecar): boolean {
  return (s.status === 'Completed' || s.status === 'PartiallyCompleted') && s.archive !== undefined;
}

/**
 * Finds a backup by id, or by name (the newest one with that name that is `Completed`, or any
 * restorable one with `allowPartial`). Looks in `profile`, or in every profile when none is given.
 */
export async function locateBackup(
  context: BackupContext,
  ref: string,
  options: { storageProfile?: string; allowPartial?: boolean; anyStatus?: boolean; signal?: AbortSignal } = {},
): Promise<LocatedBackup> {
  const profiles = options.storageProfile
    ? [context.profileName(options.storageProfile)]
    : [context.profileName(), ...context.storage.names()];
  const seen = new Set<string>();
  const byId = UUID.test(ref);
  let best: LocatedBackup | undefined;
  const sig = options.signal ? { signal: options.signal } : {};
  for (const profile of profiles) {
    if (seen.has(profile)) continue;
    seen.add(profile);
    const driver = context.storage.get(profile);
    if (byId) {
      const suffix = `-${ref.slice(-8).toLowerCase()}${SIDECAR_SUFFIX}`;
      for await (const o of driver.list('', sig)) {
        if (!o.key.endsWith(suffix)) continue;
        const sidecar = await readSidecar(driver, o.key, options.signal);
        if (sidecar.id === ref.toLowerCase()) return { profile, driver, sidecar, sidecarKey: o.key };
      }
      continue;
    }
    for await (const o of driver.list(`${ref}/`, sig)) {
      if (!o.key.endsWith(SIDECAR_SUFFIX)) continue;
      let sidecar: BackupSidecar;
      try {
        sidecar = await readSidecar(driver, o.key, options.signal);
      } catch {
        continue; // unreadable sidecars are reported by validation and the catalog, never restored
      }
      if (sidecar.name !== ref) continue;
      const ok = options.anyStatus || sidecar.status === 'Completed' || (options.allowPartial && isRestorable(sidecar));
      if (!ok || (!options.anyStatus && !sidecar.archive)) continue;
      if (
        !best ||
        sidecar.createdAt > best.sidecar.createdAt ||
        (sidecar.createdAt === best.sidecar.createdAt && sidecar.id > best.sidecar.id)
      )
        best = { profile, driver, sidecar, sidecarKey: o.key };
    }
    if (best && options.storageProfile) break;
  }
  if (best) return best;
  throw new BackupError(
    'BACKUP_NOT_FOUND',
    `No ${byId || options.anyStatus ? '' : 'completed '}backup ${JSON.stringify(ref)} in storage profile${profiles.length > 1 ? 's' : ''} ${[...seen].join(', ')}. List backups with \`koan-backup list\`.`,
    { details: { ref, profiles: [...seen] } },
  );
}

/** A random-access view of a stored archive through ranged reads (works on every storage backend). */
export function storageSource(
  driver: StorageDriver,
  key: string,
  size: number,
  signal?: AbortSignal,
): RandomAccessSource {
  return {
    size,
    read(start: number, endExclusive: number): Readable {
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      if (endExclusive <= start) {
        out.end();
        return out;
      }
      driver
        .get(key, { range: { start, end: endExclusive - 1 }, ...(signal ? { signal } : {}) })
        .then((body) => pipeline(body, out))
        .catch((e) => out.destroy(e));
      return out;
    },
  };
}

/** Opens the archive of a located backup, checking that storage holds exactly the published size. */
/**
 * The whole archive's bytes against the size and SHA-256 recorded in the sidecar at publish time: a description of
 * the difference, or `undefined` when every byte is the one written.
 */
export async function archiveHashProblem(located: LocatedBackup, signal?: AbortSignal): Promise<string | undefined> {
  const archive = located.sidecar.archive!;
  const { driver } = located;
  const options = signal ? { signal } : {};
  let bytes = 0;
  let sha256: string;
  if (driver.sha256) ({ sha256, bytes } = await driver.sha256(archive.key, options));
  else {
    const hash = createHash('sha256');
    for await (const chunk of await driver.get(archive.key, options)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    sha256 = hash.digest('hex');
  }
  if (bytes !== archive.sizeBytes)
    return `Archive ${archive.key} is ${bytes} bytes, but ${archive.sizeBytes} were published (truncated or replaced)`;
  if (sha256 !== archive.sha256)
    return `Archive ${archive.key}: SHA-256 differs from the one recorded at publish time (the bytes changed)`;
  return undefined;
}

export async function openArchive(located: LocatedBackup, signal?: AbortSignal): Promise<ZipReader> {
  const archive = located.sidecar.archive;
  if (!archive || !isRestorable(located.sidecar))
    throw new BackupError(
      'BACKUP_NOT_RESTORABLE',
      `Backup ${located.sidecar.name} (${located.sidecar.id}) has status ${located.sidecar.status}${located.sidecar.errorMessage ? `: ${located.sidecar.errorMessage}` : ''}; it cannot be restored.`,
      { details: { backupId: located.sidecar.id } },
    );
  const head = await located.driver.head(archive.key, signal ? { signal } : {});
  if (!head)
    throw new BackupError(
      'ARCHIVE_CORRUPT',
      `Archive ${archive.key} of backup ${located.sidecar.id} is missing from storage profile ${located.profile}.`,
      {
        details: { key: archive.key },
      },
    );
  if (head.size !== archive.sizeBytes)
    throw new BackupError(
      'ARCHIVE_CORRUPT',
      `Archive ${archive.key} is ${head.size} bytes in storage but ${archive.sizeBytes} were published: it was truncated or replaced.`,
      { details: { key: archive.key, reason: 'size' } },
    );
  return ZipReader.open(storageSource(located.driver, archive.key, archive.sizeBytes, signal));
}

export { scanProfile };
