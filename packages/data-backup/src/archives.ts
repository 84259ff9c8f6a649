/**
 * Archives without their catalog record. A sidecar can be lost (an archive copied by hand, a bucket sync that missed
 * it, a crash between the archive and its commit marker); the archive still holds its own manifest. These functions
 * read such an archive as a backup (validate, inspect, restore it), adopt it back into the catalog, and tell a
 * complete archive from a damaged one. Storage `put` is atomic (a temp name, then a commit), so whatever is at an
 * archive's final key was whole when it was published: cleanup never deletes one on its own; a damaged one is only
 * removed when asked for by key (`deleteDamagedArchive`).
 */
import { createHash } from 'node:crypto';
import { basename, dirname, resolve } from 'node:path';
import { createLocalStorage, type StorageDriver } from '@koan/storage';
import { storageSource, ZipReader } from './archive/index.js';
import { type LocatedBackup, parseBackupKey, readSidecar, writeSidecar } from './catalog.js';
import type { BackupContext } from './context.js';
import { BackupError } from './errors.js';
import { type BackupManifest, type BackupSidecar, backupKeys, SIDECAR_SUFFIX } from './manifest.js';
import { readContents, readFailure, verifyEntries } from './verify.js';

/** Where an archive is: a storage key (in `profile`, default the default profile) or a file path (CLI only). */
export type ArchiveRef = { readonly profile?: string; readonly key: string } | { readonly path: string };

/** What an archive without a sidecar is. */
export interface ArchiveState {
  /**
   * `complete`: a ZIP with a Koan manifest whose entries match their checksums (restorable: adopt it);
   * `damaged`: anything else: not a ZIP that opens (no end-of-central-directory record...), or a ZIP whose manifest or
   * an entry does not check out. An object at a final key was published whole (storage `put` is atomic), so a damaged
   * one is never taken for an unfinished upload: cleanup keeps and reports it.
   */
  readonly state: 'complete' | 'damaged';
  readonly sizeBytes: number;
  readonly sha256: string;
  readonly manifest?: BackupManifest;
  /** Why it is damaged. */
  readonly problem?: string;
}

async function sha256Of(driver: StorageDriver, key: string, signal?: AbortSignal): Promise<string> {
  const options = signal ? { signal } : {};
  if (driver.sha256) return (await driver.sha256(key, options)).sha256;
  const hash = createHash('sha256');
  for await (const chunk of await driver.get(key, options)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Reads an archive at `key` and says what it is (see {@link ArchiveState}): its ZIP structure, manifest, checksums and
 * every entry's SHA-256 and line count are checked. A failure to read (network, access) is thrown, never taken as
 * damage.
 */
export async function inspectArchive(driver: StorageDriver, key: string, signal?: AbortSignal): Promise<ArchiveState> {
  const head = await driver.head(key, signal ? { signal } : {});
  if (!head) throw new BackupError('BACKUP_NOT_FOUND', `There is no archive ${key}.`, { details: { key } });
  const sha256 = await sha256Of(driver, key, signal);
  let reader: ZipReader;
  try {
    reader = await ZipReader.open(storageSource(driver, key, head.size, signal));
  } catch (e) {
    const failure = readFailure(e);
    if (failure || signal?.aborted) throw failure ?? e;
    return { state: 'damaged', sizeBytes: head.size, sha256, problem: `not a ZIP that opens: ${(e as Error).message}` };
  }
  try {
    const contents = await readContents(reader);
    const report = await verifyEntries(reader, contents, { deep: false, ...(signal ? { signal } : {}) });
    if (report.issues.length)
      return {
        state: 'damaged',
        sizeBytes: head.size,
        sha256,
        manifest: contents.manifest,
        problem: report.issues.join('; '),
      };
    return { state: 'complete', sizeBytes: head.size, sha256, manifest: contents.manifest };
  } catch (e) {
    const failure = readFailure(e);
    if (failure || signal?.aborted) throw failure ?? e;
    return { state: 'damaged', sizeBytes: head.size, sha256, problem: (e as Error).message };
  } finally {
    await reader.close();
  }
}

/** The storage driver and key of an {@link ArchiveRef} (a file path gets a local driver on its directory). */
function driverOf(
  context: BackupContext,
  ref: ArchiveRef,
  cwd: string,
): { driver: StorageDriver; key: string; profile: string } {
  if ('path' in ref) {
    const full = resolve(cwd, ref.path);
    return {
      driver: createLocalStorage({ root: dirname(full), profile: `file:${full}` }),
      key: basename(full),
      profile: `file:${full}`,
    };
  }
  const profile = context.profileName(ref.profile);
  return { driver: context.storage.get(profile), key: ref.key, profile };
}

/** The catalog record an archive's embedded manifest describes, as it would be published in `profile` at `key`. */
function sidecarOf(manifest: BackupManifest, profile: string, key: string, state: ArchiveState): BackupSidecar {
  return { ...manifest, storageProfile: profile, archive: { key, sizeBytes: state.sizeBytes, sha256: state.sha256 } };
}

/**
 * An archive as a located backup, from its embedded manifest (its sidecar, if any, is not needed): validate, inspect
 * and restore take it like a catalog entry. A damaged archive is refused with `ARCHIVE_CORRUPT` naming
 * why. `cwd` resolves a relative file path.
 */
export async function locateArchive(
  context: BackupContext,
  ref: ArchiveRef,
  options: { cwd?: string; signal?: AbortSignal } = {},
): Promise<LocatedBackup> {
  const { driver, key, profile } = driverOf(context, ref, options.cwd ?? context.runtime.cwd);
  const state = await inspectArchive(driver, key, options.signal);
  if (state.state !== 'complete' || !state.manifest)
    throw new BackupError(
      'ARCHIVE_CORRUPT',
      `${'path' in ref ? ref.path : `${profile}:${key}`} is not a restorable Koan archive (${state.state}): ${state.problem}`,
      { details: { key, profile, state: state.state } },
    );
  return {
    profile,
    driver,
    sidecar: sidecarOf(state.manifest, profile, key, state),
    sidecarKey: `${key.replace(/\.zip$/, '')}${SIDECAR_SUFFIX}`,
    fromArchive: true,
  };
}

/** What {@link adoptArchive} did. */
export interface AdoptReceipt {
  readonly id: string;
  readonly name: string;
  readonly profile: string;
  /** The archive's key in the profile (where it was, or where it was copied to). */
  readonly archiveKey: string;
  readonly sidecarKey: string;
  /** The archive was copied into the profile (from a file path, or from a key outside Koan's layout). */
  readonly copied: boolean;
}

/**
 * Brings an archive back into the catalog: checks it (structure, manifest, every entry's checksum), then writes its
 * sidecar from the embedded manifest. An archive outside Koan's key layout (a file path, a key renamed by hand) is
 * first copied into `profile` under the layout's key. Refused when the archive is not complete (`ARCHIVE_CORRUPT`) or
 * the backup is already in the catalog there (`ALREADY_EXISTS`).
 */
export async function adoptArchive(
  context: BackupContext,
  ref: ArchiveRef,
  options: { profile?: string; cwd?: string; signal?: AbortSignal } = {},
): Promise<AdoptReceipt> {
  const located = await locateArchive(context, ref, options);
  const { sidecar: found, driver: from } = located;
  const fromKey = found.archive!.key;
  const profile = context.profileName(options.profile ?? ('path' in ref ? undefined : ref.profile));
  const target = context.storage.get(profile);
  // In place: a key in Koan's layout in the target profile, or the same bytes already at the layout's key there.
  const layout = backupKeys(found.name, found.id, new Date(found.createdAt));
  let keys: { archive: string; sidecar: string } = layout;
  let inPlace = false;
  if (!('path' in ref) && located.profile === profile && parseBackupKey(fromKey)?.kind === 'archive') {
    keys = { archive: fromKey, sidecar: `${fromKey.slice(0, -'.zip'.length)}${SIDECAR_SUFFIX}` };
    inPlace = true;
  } else if ((await target.head(layout.archive))?.size === found.archive!.sizeBytes)
    inPlace = (await sha256Of(target, layout.archive, options.signal)) === found.archive!.sha256;
  if (await target.head(keys.sidecar)) {
    const existing = await readSidecar(target, keys.sidecar).catch(() => undefined);
    throw new BackupError(
      'ALREADY_EXISTS',
      `Backup ${found.name} (${found.id}) is already in the catalog of profile ${profile} (${keys.sidecar}${existing ? `, status ${existing.status}` : ''}); nothing was changed.`,
      { details: { id: found.id, profile, sidecarKey: keys.sidecar } },
    );
  }
  if (!inPlace) {
    if (await target.head(keys.archive))
      throw new BackupError(
        'ALREADY_EXISTS',
        `Profile ${profile} already has ${keys.archive} without a catalog record: adopt that one (koan-backup adopt ${keys.archive} --profile ${profile}).`,
        { details: { profile, key: keys.archive } },
      );
    const body = await from.get(fromKey, options.signal ? { signal: options.signal } : {});
    await target.put(keys.archive, body, {
      contentType: 'application/zip',
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const copied = await target.head(keys.archive);
    if (
      copied?.size !== found.archive!.sizeBytes ||
      (await sha256Of(target, keys.archive, options.signal)) !== found.archive!.sha256
    ) {
      await target.delete(keys.archive).catch(() => undefined);
      throw new BackupError(
        'ARCHIVE_CORRUPT',
        `The copy of ${fromKey} in ${profile} does not match the original; it was removed.`,
      );
    }
  }
  const sidecar: BackupSidecar = {
    ...found,
    storageProfile: profile,
    archive: { key: keys.archive, sizeBytes: found.archive!.sizeBytes, sha256: found.archive!.sha256 },
  };
  await writeSidecar(target, keys.sidecar, sidecar, options.signal);
  return {
    id: found.id,
    name: found.name,
    profile,
    archiveKey: keys.archive,
    sidecarKey: keys.sidecar,
    copied: !inPlace,
  };
}

/** What {@link deleteDamagedArchive} removed. */
export interface DamagedArchiveReceipt {
  readonly profile: string;
  readonly key: string;
  readonly freedBytes: number;
  /** Why it is damaged, as it was read just before it was deleted. */
  readonly problem: string;
  readonly deletedAt: string;
}

/**
 * Deletes one damaged archive that cleanup kept and reported: a key of Koan's backup layout in `profile` (default: the
 * default profile) with no sidecar beside it, that {@link inspectArchive} finds damaged right now. Cleanup never
 * deletes an archive at a final key on its own (storage `put` is atomic, so it was whole when it was published, and it
 * may still be worth a look): this is the explicit way, one key at a time. Refused, nothing deleted: a key outside the
 * layout (`INVALID_OPTION`), no object there (`BACKUP_NOT_FOUND`), a sidecar beside it (a backup in the catalog:
 * delete it as a backup) or an archive that checks out (a restorable backup: adopt it) (`INVALID_OPTION`).
 */
export async function deleteDamagedArchive(
  context: BackupContext,
  ref: { readonly profile?: string; readonly key: string },
  options: { signal?: AbortSignal } = {},
): Promise<DamagedArchiveReceipt> {
  const { key } = ref;
  const profile = context.profileName(ref.profile);
  const driver = context.storage.get(profile);
  const sig = options.signal ? { signal: options.signal } : {};
  const parsed = parseBackupKey(key);
  const refuse = (why: string) =>
    new BackupError('INVALID_OPTION', `${profile}:${key} was not deleted: ${why}`, {
      details: { option: 'key', key, profile },
    });
  if (parsed?.kind !== 'archive')
    throw refuse(
      "it is not an archive key of Koan's backup layout (<name>/<name>-YYYYMMDD-HHmmss-<id8>.zip), and no other key is ever deleted.",
    );
  const sidecarKey = `${parsed.base}${SIDECAR_SUFFIX}`;
  if (await driver.head(sidecarKey, sig))
    throw refuse(
      `it is a backup in the catalog (its sidecar ${sidecarKey} exists): delete it as a backup (koan-backup delete <id> --profile ${profile}).`,
    );
  const state = await inspectArchive(driver, key, options.signal);
  if (state.state === 'complete')
    throw refuse(
      `it is a complete, restorable backup${state.manifest ? ` (${state.manifest.name}, ${state.manifest.id})` : ''} whose sidecar was lost, not a damaged archive: adopt it (koan-backup adopt ${key} --profile ${profile}), then delete it as a backup if it is not wanted.`,
    );
  await driver.delete(key);
  return {
    profile,
    key,
    freedBytes: state.sizeBytes,
    problem: state.problem ?? 'damaged',
    deletedAt: new Date().toISOString(),
  };
}
