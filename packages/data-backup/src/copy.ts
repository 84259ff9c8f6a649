import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LocatedBackup } from './catalog.js';
import { readSidecar, writeSidecar } from './catalog.js';
import type { BackupContext } from './context.js';
import { BackupError } from './errors.js';
import { isRestorable, locateBackup } from './locate.js';
import type { BackupSidecar } from './manifest.js';

export interface CopyOptions {
  /** Profile to copy from (default: search every profile). */
  readonly fromProfile?: string;
  readonly signal?: AbortSignal;
}

export interface CopyReceipt {
  readonly id: string;
  readonly name: string;
  readonly from: string;
  readonly to: string;
  readonly archiveKey: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly durationMs: number;
}

/**
 * The backup {@link copyBackup} copies (by id, or by name the newest restorable one), refused as it refuses it: already
 * in `toProfile` (`INVALID_OPTION`, `details.option: 'toProfile'`), or not restorable (`BACKUP_NOT_RESTORABLE`,
 * `details: { backupId, id, status }`). Lets a frontend refuse a request before it starts the copy.
 */
export async function locateForCopy(
  context: BackupContext,
  ref: string,
  toProfile: string,
  options: CopyOptions = {},
): Promise<LocatedBackup> {
  const to = context.profileName(toProfile);
  const located = await locateBackup(context, ref, {
    ...(options.fromProfile ? { storageProfile: options.fromProfile } : {}),
    allowPartial: true,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const { sidecar } = located;
  if (located.profile === to)
    throw new BackupError(
      'INVALID_OPTION',
      `Backup ${sidecar.name} is already in storage profile ${to}; pick another destination.`,
      { details: { option: 'toProfile', profile: to } },
    );
  if (!isRestorable(sidecar))
    throw new BackupError(
      'BACKUP_NOT_RESTORABLE',
      `Backup ${sidecar.name} (${sidecar.id}) has status ${sidecar.status}${sidecar.errorMessage ? `: ${sidecar.errorMessage}` : ''}; only restorable backups are copied.`,
      { details: { backupId: sidecar.id, id: sidecar.id, status: sidecar.status } },
    );
  return located;
}

/**
 * Copies a backup to another storage profile (the one {@link locateForCopy} finds): streams the archive (hashing what it reads), re-reads
 * it at the destination to verify size and SHA-256, and only then writes the sidecar there, so the copy
 * becomes visible in the destination's catalog only once it is complete and verified.
 */
export async function copyBackup(
  context: BackupContext,
  ref: string,
  toProfile: string,
  options: CopyOptions = {},
): Promise<CopyReceipt> {
  const t0 = performance.now();
  const signal = options.signal;
  const to = context.profileName(toProfile);
  const located = await locateForCopy(context, ref, to, options);
  const archive = located.sidecar.archive!;
  const target = context.storage.get(to);
  const sig = signal ? { signal } : {};
  // A backup already published at the destination is never overwritten: a failed re-copy would otherwise delete
  // (or replace) the archive under a sidecar that stays listed.
  if (await target.head(located.sidecarKey, sig))
    throw new BackupError(
      'ALREADY_EXISTS',
      `Backup ${located.sidecar.name} (${located.sidecar.id}) is already published in storage profile ${to}; delete it there first to copy it again.`,
      { details: { from: located.profile, to, key: located.sidecarKey } },
    );
  const sourceHash = createHash('sha256');
  let read = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      sourceHash.update(chunk);
      read += chunk.length;
      done(null, chunk);
    },
  });
  let sidecarWritten = false;
  try {
    const source = await located.driver.get(archive.key, sig);
    // pipeline (not .pipe) so a failed or cut source read errors the upload body instead of leaving it open forever,
    // and a failed upload stops the download.
    pipeline(source, tap).catch(() => undefined);
    await target.put(archive.key, tap, { contentType: 'application/zip', ...sig });
    const sourceDigest = sourceHash.digest('hex');
    if (read !== archive.sizeBytes || sourceDigest !== archive.sha256)
      throw corrupt(`the source read back ${read} bytes with a different SHA-256 than published`);
    const destHash = createHash('sha256');
    let written = 0;
    for await (const chunk of await target.get(archive.key, sig)) {
      destHash.update(chunk as Buffer);
      written += (chunk as Buffer).length;
    }
    if (written !== archive.sizeBytes || destHash.digest('hex') !== archive.sha256)
      throw corrupt(`the destination holds ${written} bytes with a different SHA-256`);
    const fresh = await readSidecar(located.driver, located.sidecarKey, signal);
    const sidecar: BackupSidecar = { ...fresh, storageProfile: to };
    sidecarWritten = true; // from here a failed write may still have landed (a lost response): remove it too
    await writeSidecar(target, located.sidecarKey, sidecar, signal);
    return {
      id: sidecar.id,
      name: sidecar.name,
      from: located.profile,
      to,
      archiveKey: archive.key,
      bytes: written,
      sha256: archive.sha256,
      durationMs: performance.now() - t0,
    };
  } catch (error) {
    tap.destroy();
    // Nothing was published before this call (checked above), so whatever landed at the destination is ours to remove:
    // the sidecar first (the commit marker), then the archive.
    if (sidecarWritten) await target.delete(located.sidecarKey).catch(() => undefined);
    await target.delete(archive.key).catch(() => undefined);
    throw error;
  }

  function corrupt(why: string): BackupError {
    return new BackupError(
      'ARCHIVE_CORRUPT',
      `Copy of ${archive.key} to ${to} failed verification: ${why}. Nothing was published at the destination.`,
      { details: { from: located.profile, to, key: archive.key } },
    );
  }
}
