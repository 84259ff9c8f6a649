import { createHash } from 'node:crypto';
import { type StorageDriver, StorageError } from '@koan/storage';
import { storageSource, ZipReader } from './archive/index.js';
import { locateArchive } from './archives.js';
import { type LocatedBackup, readSidecar, scanProfile } from './catalog.js';
import type { BackupContext } from './context.js';
import { BackupError } from './errors.js';
import { type BackupSidecar, SIDECAR_SUFFIX } from './manifest.js';

/** Options of {@link locateBackup}. */
export interface LocateOptions {
  /** Look only in this profile (default: every configured profile). */
  readonly storageProfile?: string;
  /** By name: the newest restorable backup (`PartiallyCompleted` too), not only `Completed` ones. */
  readonly allowPartial?: boolean;
  /** By name: the newest backup whatever its status. */
  readonly anyStatus?: boolean;
  /**
   * By name, across profiles: when some profile cannot be listed (an S3 endpoint down), use the newest backup of the
   * reachable profiles anyway (`LocatedBackup.unavailableProfiles` names the others). Without it such a lookup fails
   * with `PROFILE_UNAVAILABLE`, naming that candidate and how to pick it, because an unreachable profile may hold a
   * newer backup of that name.
   */
  readonly allowUnreachableProfiles?: boolean;
  /**
   * Read this archive file instead of looking `ref` up in the catalog (CLI `restore ./x.zip`): its embedded manifest
   * stands for the sidecar. Relative to the runtime's working directory. Never from a network request.
   */
  readonly archivePath?: string;
  readonly signal?: AbortSignal;
}

/** Storage failures that say a profile cannot be read now (network, access, configuration), not that a key is absent. */
const UNREACHABLE = new Set(['TRANSIENT', 'IO', 'ACCESS_DENIED', 'BUCKET_NOT_FOUND', 'CONFIG']);

function unreachable(e: unknown): e is StorageError {
  return e instanceof StorageError && UNREACHABLE.has(e.code);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `ref` is a backup id (a UUID, any case) rather than a backup name. */
export function isBackupId(ref: string): boolean {
  return UUID.test(ref);
}

export function isRestorable(s: BackupSidecar): boolean {
  return (s.status === 'Completed' || s.status === 'PartiallyCompleted') && s.archive !== undefined;
}

/**
 * Refuses a backup that has no complete archive (`Failed`, `Cancelled`, `InProgress`): `BACKUP_NOT_RESTORABLE`, with
 * its status and error message, `details: { backupId, id, status }`. Lets a frontend refuse a request before it starts.
 */
export function assertRestorable(sidecar: BackupSidecar): void {
  if (isRestorable(sidecar)) return;
  throw new BackupError(
    'BACKUP_NOT_RESTORABLE',
    `Backup ${sidecar.name} (${sidecar.id}) has status ${sidecar.status}${sidecar.errorMessage ? `: ${sidecar.errorMessage}` : ''}; it cannot be restored.`,
    { details: { backupId: sidecar.id, id: sidecar.id, status: sidecar.status } },
  );
}

/**
 * Finds a backup by id, or by name (the newest one with that name that is `Completed`, or any restorable one with
 * `allowPartial`). Looks in `storageProfile`, or in every profile when none is given. A profile that cannot be listed
 * (endpoint down, access denied...) does not stop the search of the others; see
 * {@link LocateOptions.allowUnreachableProfiles} for when its absence makes the answer uncertain.
 */
export async function locateBackup(
  context: BackupContext,
  ref: string,
  options: LocateOptions = {},
): Promise<LocatedBackup> {
  const signal = options.signal ? { signal: options.signal } : {};
  if (options.archivePath) return locateArchive(context, { path: options.archivePath }, signal);
  // A storage key of an archive (`nightly/nightly-20241217-020000-1a2b3c4d.zip`): its own manifest, sidecar or not.
  if (ref.endsWith('.zip')) return locateArchiveKey(context, ref, options);
  const profiles = options.storageProfile
    ? [context.profileName(options.storageProfile)]
    : [...new Set([context.profileName(), ...context.storage.names()])];
  const byId = isBackupId(ref);
  let best: LocatedBackup | undefined;
  const unavailable: { profile: string; code: string; message: string; error: StorageError }[] = [];
  for (const profile of profiles) {
    const driver = context.storage.get(profile);
    try {
      const found = byId
        ? await findById(driver, profile, ref, options.signal)
        : await newestByName(driver, profile, ref, options);
      if (byId && found) return found; // an id is unique: no other profile can hold a better answer
      if (
        found &&
        (!best ||
          found.sidecar.createdAt > best.sidecar.createdAt ||
          (found.sidecar.createdAt === best.sidecar.createdAt && found.sidecar.id > best.sidecar.id))
      )
        best = found;
    } catch (e) {
      // One profile down (an S3 endpoint, say) must not hide the backups of the others: the one place a lookup is
      // needed most is a disaster recovery. A single named profile, or a cancellation, fails as it is.
      if (options.storageProfile || options.signal?.aborted || !unreachable(e)) throw e;
      unavailable.push({ profile, code: e.code, message: e.message, error: e });
    }
  }
  const down = unavailable.map(({ profile, code, message }) => ({ profile, code, message }));
  const downText = unavailable.map((u) => `${u.profile} (${u.code}: ${u.message})`).join('; ');
  if (best && unavailable.length === 0) return best;
  if (best && options.allowUnreachableProfiles) return { ...best, unavailableProfiles: down };
  if (best) {
    const { sidecar, profile } = best;
    throw new BackupError(
      'PROFILE_UNAVAILABLE',
      `The newest reachable backup ${JSON.stringify(ref)} is ${sidecar.id} in profile ${profile}, made ${sidecar.createdAt}, but profile${unavailable.length > 1 ? 's' : ''} ${downText} could not be listed and may hold a newer one. To use it anyway: pick it by id (--backup-id ${sidecar.id}), or its profile (--profile ${profile}), or allow unreachable profiles (--allow-unreachable-profiles; library: allowUnreachableProfiles: true).`,
      {
        cause: unavailable[0]!.error,
        details: {
          ref,
          candidate: { id: sidecar.id, profile, createdAt: sidecar.createdAt },
          unavailableProfiles: down,
        },
      },
    );
  }
  if (unavailable.length === profiles.length) throw unavailable[0]!.error;
  const searched = profiles.filter((p) => !unavailable.some((u) => u.profile === p));
  throw new BackupError(
    unavailable.length ? 'PROFILE_UNAVAILABLE' : 'BACKUP_NOT_FOUND',
    `No ${byId || options.anyStatus ? '' : 'completed '}backup ${JSON.stringify(ref)} in storage profile${searched.length > 1 ? 's' : ''} ${searched.join(', ')}${unavailable.length ? `; profile${unavailable.length > 1 ? 's' : ''} ${downText} could not be listed and may hold it` : ''}. List backups with \`koan-backup list\`.`,
    { details: { ref, profiles: searched, ...(unavailable.length ? { unavailableProfiles: down } : {}) } },
  );
}

/** An archive by storage key, in `storageProfile` or the first profile that has it. */
async function locateArchiveKey(context: BackupContext, key: string, options: LocateOptions): Promise<LocatedBackup> {
  const signal = options.signal ? { signal: options.signal } : {};
  if (options.storageProfile) return locateArchive(context, { key, profile: options.storageProfile }, signal);
  const profiles = [...new Set([context.profileName(), ...context.storage.names()])];
  for (const profile of profiles) {
    const head = await context.storage
      .get(profile)
      .head(key, signal)
      .catch((e: unknown) => {
        if (unreachable(e)) return undefined;
        throw e;
      });
    if (head) return locateArchive(context, { key, profile }, signal);
  }
  throw new BackupError(
    'BACKUP_NOT_FOUND',
    `No archive ${JSON.stringify(key)} in storage profile${profiles.length > 1 ? 's' : ''} ${profiles.join(', ')}. A local file is restored by its path (koan-backup restore ./file.zip).`,
    { details: { key, profiles } },
  );
}

async function findById(
  driver: StorageDriver,
  profile: string,
  ref: string,
  signal: AbortSignal | undefined,
): Promise<LocatedBackup | undefined> {
  const suffix = `-${ref.slice(-8).toLowerCase()}${SIDECAR_SUFFIX}`;
  for await (const o of driver.list('', signal ? { signal } : {})) {
    if (!o.key.endsWith(suffix)) continue;
    const sidecar = await readSidecar(driver, o.key, signal);
    if (sidecar.id === ref.toLowerCase()) return { profile, driver, sidecar, sidecarKey: o.key };
  }
  return undefined;
}

async function newestByName(
  driver: StorageDriver,
  profile: string,
  ref: string,
  options: LocateOptions,
): Promise<LocatedBackup | undefined> {
  let best: LocatedBackup | undefined;
  for await (const o of driver.list(`${ref}/`, options.signal ? { signal: options.signal } : {})) {
    if (!o.key.endsWith(SIDECAR_SUFFIX)) continue;
    let sidecar: BackupSidecar;
    try {
      sidecar = await readSidecar(driver, o.key, options.signal);
    } catch (e) {
      if (unreachable(e)) throw e; // the profile went down: not an unreadable sidecar
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
  return best;
}

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

/** Opens the archive of a located backup, checking that storage holds exactly the published size. */
export async function openArchive(located: LocatedBackup, signal?: AbortSignal): Promise<ZipReader> {
  assertRestorable(located.sidecar);
  const archive = located.sidecar.archive!;
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
