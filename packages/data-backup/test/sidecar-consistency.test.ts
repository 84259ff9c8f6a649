/**
 * The sidecar is what the catalog lists; the archive's manifest is what was backed up. A sidecar edited after the
 * backup (counts, names, tags, status) no longer matches: validation reports it and a restore refuses the backup.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineEntity, t, unregisterEntity } from '@koan/data';
import { BackupDiscoveryService, type BackupError, backupEntity, restoreEntity } from '@koan/data-backup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';

const ScItem = defineEntity({
  name: 'ScItem',
  key: 'id',
  source: 'sc_mem',
  fields: { id: t.integer(), v: t.string() },
});
let env: Awaited<ReturnType<typeof makeContext>>;

beforeAll(async () => {
  env = await makeContext({ sc_mem: { provider: 'memory' } });
  await ScItem.withRuntime(env.context.runtime).upsertMany(
    Array.from({ length: 20 }, (_, i) => ({ id: i, v: `v${i}` })),
  );
});
afterAll(async () => {
  unregisterEntity('ScItem');
  await env.cleanup();
});

type Sidecar = { entities: { itemCount: number }[]; tags: string[]; status: string; description?: string };

describe('a sidecar that disagrees with its archive', () => {
  const edits: [string, (s: Sidecar) => void][] = [
    [
      'itemCount',
      (s) => {
        s.entities[0]!.itemCount = 999;
      },
    ],
    [
      'tags',
      (s) => {
        s.tags = ['forged'];
      },
    ],
    [
      'status',
      (s) => {
        s.status = 'PartiallyCompleted';
      },
    ],
    [
      'description',
      (s) => {
        s.description = 'forged';
      },
    ],
  ];
  it.for(edits)('is invalid when its %s was edited, and a restore refuses it', async ([what, edit]) => {
    const items = ScItem.withRuntime(env.context.runtime);
    const m = await backupEntity(env.context, items, `edited-${what}`, { tags: ['real'] });
    const sidecarPath = join(env.dir, 'backups', m.archive!.key.replace(/\.zip$/, '.manifest.json'));
    const sidecar = JSON.parse(readFileSync(sidecarPath, 'utf8'));
    edit(sidecar);
    writeFileSync(sidecarPath, JSON.stringify(sidecar));
    const result = await new BackupDiscoveryService(env.context).validateBackup(m.id);
    expect(result.isValid).toBe(false);
    expect(result.issues.join('\n')).toMatch(
      /sidecar .* disagrees with the archive's manifest on (entities|tags|status|description)/,
    );
    const err = (await restoreEntity(env.context, items, `edited-${what}`, { backupId: m.id, targetSet: 'x' }).catch(
      (e) => e,
    )) as BackupError;
    expect(err.code).toMatch(/ARCHIVE_CORRUPT|VALIDATION_FAILED|BACKUP_NOT_RESTORABLE/);
    expect(await items.set('x').count()).toBe(0);
  });

  it('a truncated archive is reported once, by its size', async () => {
    const m = await backupEntity(env.context, ScItem.withRuntime(env.context.runtime), 'truncated');
    const path = join(env.dir, 'backups', m.archive!.key);
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 100));
    const result = await new BackupDiscoveryService(env.context).validateBackup(m.id);
    expect(result.issues).toEqual([expect.stringMatching(/bytes, but \d+ were published \(truncated or replaced\)/)]);
  });

  it('an untouched sidecar (with its validation result added) stays valid', async () => {
    const m = await backupEntity(env.context, ScItem.withRuntime(env.context.runtime), 'untouched');
    const service = new BackupDiscoveryService(env.context);
    expect((await service.validateBackup(m.id)).isValid).toBe(true);
    expect((await service.validateBackup(m.id)).isValid).toBe(true);
  });
});
