import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Entity, type FieldsShape, t } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { BackupDiscoveryService, type BackupError, backupEntity, restoreEntity } from '@koan/data-backup';
import { fileSource, ZipReader } from '@koan/data-backup/archive';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';

const fields = {
  id: t.integer(),
  name: t.string(),
  price: t.decimal(),
  at: t.datetime(),
  tags: t.json().optional(),
};
function entity(name = 'Product'): Entity<typeof fields> {
  return new Entity(buildSchema({ name, key: 'id', fields }, 'declared'), fields as typeof fields & FieldsShape);
}

let env: Awaited<ReturnType<typeof makeContext>>;
beforeEach(async () => {
  env = await makeContext({ default: { provider: 'memory' } });
});
afterEach(async () => env.cleanup());

function rows(n: number, offset = 0) {
  return Array.from({ length: n }, (_, i) => ({
    id: i + 1 + offset,
    name: `Product ${i + 1 + offset} ✓`,
    price: `${i}.50`,
    at: `2024-01-0${(i % 9) + 1}T10:00:00.123456Z`,
    ...(i % 2 ? { tags: { i, nested: [1, null, 'x'] } } : {}),
  }));
}

describe('one entity backup and restore', () => {
  it('round-trips every record exactly, and the archive opens with unzip and python zipfile', async () => {
    const Product = entity().withRuntime(env.context.runtime);
    await Product.upsertMany(rows(2500));
    const manifest = await backupEntity(env.context, Product, 'products', {
      batchSize: 300,
      description: 'first',
      tags: ['daily'],
    });
    expect(manifest.status).toBe('Completed');
    expect(manifest.entities).toHaveLength(1);
    expect(manifest.entities[0]).toMatchObject({
      entityType: 'Product',
      set: 'root',
      itemCount: 2500,
      provider: 'memory',
      storageFile: 'entities/Product.jsonl',
    });
    expect(manifest.verification.totalItemCount).toBe(2500);
    const zip = join(env.dir, 'backups', manifest.archive!.key);
    expect(execFileSync('unzip', ['-t', zip]).toString()).toContain('No errors detected');
    const names = execFileSync('python3', [
      '-c',
      'import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print("\\n".join(z.namelist()))',
      zip,
    ])
      .toString()
      .trim()
      .split('\n');
    expect(names.sort()).toEqual([
      'entities/Product.jsonl',
      'manifest.json',
      'verification/checksums.json',
      'verification/schema-snapshots.json',
    ]);
    const before = await Product.all();
    await Product.removeAll();
    const report = await restoreEntity(env.context, Product, 'products');
    expect(report.entities[0]).toMatchObject({ inserted: 2500, status: 'Restored' });
    expect(await Product.all()).toEqual(before);
  });

  it('restoreFrom by name takes the newest completed backup', async () => {
    const Product = entity().withRuntime(env.context.runtime);
    await Product.upsertMany(rows(3));
    await backupEntity(env.context, Product, 'p');
    await Product.upsertMany(rows(2, 100));
    const newest = await backupEntity(env.context, Product, 'p');
    await Product.removeAll();
    const report = await restoreEntity(env.context, Product, 'p');
    expect(report.backupId).toBe(newest.id);
    expect(await Product.count()).toBe(5);
  });

  it('replaceExisting removes records the backup does not have; merge keeps them', async () => {
    const Product = entity().withRuntime(env.context.runtime);
    await Product.upsertMany(rows(10));
    await backupEntity(env.context, Product, 'p');
    await Product.upsertMany(rows(5, 1000));
    await restoreEntity(env.context, Product, 'p');
    expect(await Product.count()).toBe(15);
    const r = await restoreEntity(env.context, Product, 'p', { replaceExisting: true });
    expect(r.entities[0]!.removed).toBe(15);
    expect(await Product.count()).toBe(10);
  });

  it('targetSet restores into another set and leaves root alone', async () => {
    const Product = entity().withRuntime(env.context.runtime);
    await Product.upsertMany(rows(4));
    await backupEntity(env.context, Product, 'p');
    await Product.removeAll();
    await restoreEntity(env.context, Product, 'p', { targetSet: 'archive' });
    expect(await Product.count()).toBe(0);
    expect(await Product.set('archive').count()).toBe(4);
  });

  it('corruption: one flipped byte fails validation naming the entry, and restore writes nothing', async () => {
    const Product = entity().withRuntime(env.context.runtime);
    await Product.upsertMany(rows(500));
    const m = await backupEntity(env.context, Product, 'p', { compressData: false });
    const file = join(env.dir, 'backups', m.archive!.key);
    const bytes = readFileSync(file);
    const at = bytes.indexOf(Buffer.from('Product 250 '));
    bytes[at + 8] = '9'.charCodeAt(0);
    writeFileSync(file, bytes);
    await Product.removeAll();
    await Product.upsertMany(rows(1, 5000));
    const discovery = new BackupDiscoveryService(env.context);
    const v = await discovery.validateBackup('p');
    expect(v.isValid).toBe(false);
    expect(v.issues.join('\n')).toMatch(/entities\/Product\.jsonl/);
    await expect(restoreEntity(env.context, Product, 'p', { replaceExisting: true })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      message: expect.stringMatching(/SHA-256 differs[\s\S]*entities\/Product\.jsonl/),
    } satisfies Partial<BackupError>);
    expect((await Product.all()).map((r) => r.id)).toEqual([5001]);
    expect(readdirSync(join(env.dir, 'backups', 'p')).length).toBe(2);
  });

  it('without validateBeforeRestore, a changed entry whose CRC-32 was fixed up fails on its stored-bytes hash; nothing stays', async () => {
    const Product = entity().withRuntime(env.context.runtime);
    await Product.upsertMany(rows(500));
    const m = await backupEntity(env.context, Product, 'crc', { compressData: false });
    expect(m.entities[0]?.storedHash).toMatch(/^[0-9a-f]{64}$/);
    const file = join(env.dir, 'backups', m.archive!.key);
    const name = 'entities/Product.jsonl';
    const reader = await ZipReader.open(await fileSource(file));
    const content = await reader.readBuffer(name);
    const oldCrc = reader.entry(name)!.crc32;
    await reader.close();
    const bytes = readFileSync(file);
    const start = bytes.indexOf(content.subarray(0, 200));
    const at = bytes.indexOf(Buffer.from('Product 250 '), start);
    bytes[at + 8] = '9'.charCodeAt(0);
    const newCrc = crc32(bytes.subarray(start, start + content.length));
    // Every later copy of the CRC (data descriptor, central directory) now agrees with the changed bytes.
    const from = Buffer.alloc(4);
    from.writeUInt32LE(oldCrc);
    const to = Buffer.alloc(4);
    to.writeUInt32LE(newCrc);
    let patched = 0;
    for (let i = bytes.indexOf(from, start + content.length); i >= 0; i = bytes.indexOf(from, i + 4)) {
      to.copy(bytes, i);
      patched++;
    }
    expect(patched).toBe(2);
    writeFileSync(file, bytes);
    await Product.removeAll();
    await Product.upsertMany(rows(1, 7000));
    await expect(
      restoreEntity(env.context, Product, 'crc', { validateBeforeRestore: false, replaceExisting: true }),
    ).rejects.toMatchObject({
      code: 'RESTORE_FAILED',
      cause: {
        code: 'ARCHIVE_CORRUPT',
        message: expect.stringMatching(/entities\/Product\.jsonl: SHA-256 .* of its stored bytes differs/),
      },
    });
    expect((await Product.all()).map((r) => r.id)).toEqual([7001]);
    // The deep validation checks both recorded hashes of the entry.
    const v = await new BackupDiscoveryService(env.context).validateBackup('crc');
    expect(v.isValid).toBe(false);
    expect(v.issues.join('\n')).toMatch(/entities\/Product\.jsonl: SHA-256 of the stored \(compressed\) bytes is/);
    expect(v.issues.join('\n')).toMatch(/entities\/Product\.jsonl: SHA-256 mismatch/);
  });

  it('validateBeforeRestore checks every archive byte against the SHA-256 the sidecar recorded at publish time', async () => {
    const Product = entity().withRuntime(env.context.runtime);
    await Product.upsertMany(rows(50));
    const m = await backupEntity(env.context, Product, 'sha');
    const sidecarFile = join(env.dir, 'backups', m.archive!.key.replace(/\.zip$/, '.manifest.json'));
    const sidecar = JSON.parse(readFileSync(sidecarFile, 'utf8'));
    sidecar.archive.sha256 = '0'.repeat(64);
    writeFileSync(sidecarFile, JSON.stringify(sidecar));
    await Product.removeAll();
    await expect(restoreEntity(env.context, Product, 'sha')).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      message: expect.stringContaining('SHA-256 differs from the one recorded at publish time'),
    });
    expect(await Product.count()).toBe(0);
    // The entries themselves are intact: without the check the restore goes through.
    await restoreEntity(env.context, Product, 'sha', { validateBeforeRestore: false });
    expect(await Product.count()).toBe(50);
  });
});
