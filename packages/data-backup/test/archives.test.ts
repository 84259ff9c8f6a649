/**
 * An archive whose sidecar was lost (copied by hand, a bucket sync that missed it, a crash before the commit marker):
 * it is still a backup. It can be validated, inspected and restored by storage key or file path, adopted back into the
 * catalog, and cleanup never deletes it, nor any other archive at a final key: a damaged one is kept and reported, and
 * only `deleteDamagedArchive` removes it, by key.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, t, unregisterEntity } from '@koan/data';
import { BackupDiscoveryService, type BackupResult, backupEntity, restoreEntity } from '@koan/data-backup';
import { adoptArchive, deleteDamagedArchive, locateArchive } from '@koan/data-backup/archive';
import { cleanupLeftovers } from '@koan/data-backup/maintenance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';

const ArNote = defineEntity({
  name: 'ArNote',
  key: 'id',
  source: 'ar_mem',
  fields: { id: t.integer(), text: t.string(), meta: t.json().nullable() },
});

let env: Awaited<ReturnType<typeof makeContext>>;
let backup: BackupResult;
let root: string;
let outside: string;
const notes = () => ArNote.withRuntime(env.context.runtime);
const rows = Array.from({ length: 50 }, (_, i) => ({ id: i + 1, text: `note ${i}`, meta: i % 2 ? { i } : null }));

beforeAll(async () => {
  env = await makeContext({ ar_mem: { provider: 'memory' } });
  root = join(env.dir, 'backups');
  outside = mkdtempSync(join(tmpdir(), 'koan-archive-file-'));
  await notes().upsertMany(rows);
  backup = await backupEntity(env.context, notes(), 'lost');
  rmSync(join(root, backup.archive!.key.replace(/\.zip$/, '.manifest.json'))); // the catalog record is gone
});
afterAll(async () => {
  unregisterEntity('ArNote');
  rmSync(outside, { recursive: true, force: true });
  await env.cleanup();
});

describe('an archive without its sidecar', () => {
  it('is invisible to the catalog, but validates and restores by its storage key', async () => {
    const discovery = new BackupDiscoveryService(env.context);
    expect((await discovery.discoverAllBackups()).backups).toEqual([]);
    const key = backup.archive!.key;
    const valid = await discovery.validateBackup(key);
    expect(valid).toMatchObject({ isValid: true, backupId: backup.id, checkedLines: 50 });
    await notes().removeAll();
    const report = await restoreEntity(env.context, notes(), key);
    expect(report).toMatchObject({ backupId: backup.id, status: 'Completed' });
    expect(await notes().count()).toBe(50);
  });

  it('restores from a file path outside every profile (CLI `restore ./file.zip`)', async () => {
    const file = join(outside, 'copied-by-hand.zip');
    copyFileSync(join(root, backup.archive!.key), file);
    await notes().removeAll();
    const located = await locateArchive(env.context, { path: file });
    expect(located).toMatchObject({ fromArchive: true, sidecar: { id: backup.id, name: 'lost' } });
    const report = await restoreEntity(env.context, notes(), 'lost', { archivePath: file });
    expect(report.backupId).toBe(backup.id);
    expect((await notes().all()).map((r) => r.id)).toEqual(rows.map((r) => r.id));
  });

  it('is adopted back into the catalog: in place when the profile holds the same bytes, copied in otherwise; twice is refused', async () => {
    const discovery = new BackupDiscoveryService(env.context);
    const file = join(outside, 'copied-by-hand.zip');
    const same = await adoptArchive(env.context, { path: file }, { profile: 'local' });
    expect(same).toMatchObject({ id: backup.id, copied: false, archiveKey: backup.archive!.key });
    expect((await discovery.discoverAllBackups()).backups.map((b) => b.id)).toEqual([backup.id]);
    await expect(adoptArchive(env.context, { key: backup.archive!.key })).rejects.toMatchObject({
      code: 'ALREADY_EXISTS',
      message: expect.stringContaining('already in the catalog'),
    });
    // Gone from the profile entirely: the file is copied in under Koan's key layout, checked, then recorded.
    await discovery.deleteBackup(backup.id);
    const copied = await adoptArchive(env.context, { path: file });
    expect(copied).toMatchObject({ id: backup.id, copied: true, archiveKey: backup.archive!.key });
    expect((await discovery.validateBackup('lost')).isValid).toBe(true);
  });

  it('backs up into a file or a stream with no profile (like pg_dump -f), and restores from it', async () => {
    await notes().upsertMany(rows);
    const file = join(outside, 'out', 'notes.zip');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(outside, 'out'));
    const toFile = await backupEntity(env.context, notes(), 'to-file', { output: { file } });
    expect(toFile).toMatchObject({ storageProfile: `file:${file}`, archive: { key: file } });
    expect(existsSync(file)).toBe(true);
    expect(
      (await new BackupDiscoveryService(env.context).discoverAllBackups()).backups.map((b) => b.name),
    ).not.toContain('to-file');
    const chunks: Buffer[] = [];
    const { Writable } = await import('node:stream');
    const sink = new Writable({
      write(chunk, _enc, done) {
        chunks.push(chunk as Buffer);
        done();
      },
    });
    const toStream = await backupEntity(env.context, notes(), 'to-stream', { output: { stream: sink } });
    const streamed = join(outside, 'streamed.zip');
    writeFileSync(streamed, Buffer.concat(chunks));
    expect(Buffer.concat(chunks).length).toBe(toStream.archive!.sizeBytes);
    for (const path of [file, streamed]) {
      await notes().removeAll();
      const report = await restoreEntity(env.context, notes(), 'x', { archivePath: path });
      expect(report.status).toBe('Completed');
      expect(await notes().count()).toBe(rows.length);
    }
  });

  it('cleanup never deletes an archive at a final key: a damaged one and a truncated one are kept and reported as damaged; neither restores', async () => {
    const damaged = await backupEntity(env.context, notes(), 'damaged');
    const key = damaged.archive!.key;
    rmSync(join(root, key.replace(/\.zip$/, '.manifest.json')));
    const bytes = readFileSync(join(root, key));
    bytes[100] = bytes[100]! ^ 0xff; // inside the first entry's data
    writeFileSync(join(root, key), bytes);
    // Uploads are atomic (temp name, then commit): a ZIP cut short at a final key was whole when published, and was
    // damaged afterwards; it is not an unfinished upload, and cleanup must not take it for one.
    const truncatedKey = 'cut/cut-20240101-000000-0badf00d.zip';
    writeFileSync(join(env.dir, 'cut.zip'), bytes.subarray(0, bytes.length - 30));
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(root, 'cut'), { recursive: true });
    copyFileSync(join(env.dir, 'cut.zip'), join(root, truncatedKey));
    const old = new Date(Date.now() - 2 * 3_600_000);
    for (const k of [key, truncatedKey]) utimesSync(join(root, k), old, old);
    const report = await cleanupLeftovers(env.context, { adopt: true });
    const byKey = Object.fromEntries(report.orphanArchives.map((o) => [o.key, o]));
    expect(byKey[key]).toMatchObject({
      state: 'damaged',
      action: 'kept',
      problem: expect.stringMatching(/SHA-256|CRC|invalid/i),
    });
    expect(byKey[truncatedKey]).toMatchObject({
      state: 'damaged',
      action: 'kept',
      problem: expect.stringMatching(/^not a ZIP that opens: /),
    });
    expect(existsSync(join(root, key))).toBe(true);
    expect(existsSync(join(root, truncatedKey))).toBe(true);
    for (const k of [key, truncatedKey])
      await expect(locateArchive(env.context, { key: k })).rejects.toMatchObject({
        code: 'ARCHIVE_CORRUPT',
        message: expect.stringMatching(/not a restorable Koan archive \(damaged\)/),
      });
  });

  it('deleteDamagedArchive removes one damaged archive by key, and refuses anything else', async () => {
    const truncatedKey = 'cut/cut-20240101-000000-0badf00d.zip';
    const refused = (ref: { key: string; profile?: string }) =>
      expect(deleteDamagedArchive(env.context, ref)).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        details: { option: 'key', key: ref.key },
      });
    // A complete archive without its sidecar is a backup: adopt it.
    const whole = await backupEntity(env.context, notes(), 'whole');
    rmSync(join(root, whole.archive!.key.replace(/\.zip$/, '.manifest.json')));
    await refused({ key: whole.archive!.key });
    await expect(deleteDamagedArchive(env.context, { key: whole.archive!.key })).rejects.toThrow(/koan-backup adopt/);
    // A backup in the catalog is deleted as a backup.
    const listed = await backupEntity(env.context, notes(), 'listed');
    await refused({ key: listed.archive!.key });
    // Keys outside Koan's layout are never deleted.
    writeFileSync(join(root, 'report.zip'), 'not a koan backup');
    await refused({ key: 'report.zip' });
    await expect(
      deleteDamagedArchive(env.context, { key: 'gone/gone-20240101-000000-00000000.zip' }),
    ).rejects.toMatchObject({ code: 'BACKUP_NOT_FOUND' });
    for (const k of [whole.archive!.key, listed.archive!.key, 'report.zip'])
      expect(existsSync(join(root, k))).toBe(true);

    const size = readFileSync(join(root, truncatedKey)).length;
    const receipt = await deleteDamagedArchive(env.context, { key: truncatedKey, profile: 'local' });
    expect(receipt).toMatchObject({
      profile: 'local',
      key: truncatedKey,
      freedBytes: size,
      problem: expect.stringMatching(/^not a ZIP that opens: /),
    });
    expect(existsSync(join(root, truncatedKey))).toBe(false);
  });
});
