import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSchema, Entity, t } from '@koan/data';
import { BackupDiscoveryService, BackupMaintenanceService, backupEntity, type MaintenanceRun } from '@koan/data-backup';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';

const fields = { id: t.integer(), label: t.string() };
const schema = buildSchema({ name: 'MaintSvcNote', key: 'id', fields }, 'declared');
let env: Awaited<ReturnType<typeof makeContext>>;
beforeEach(async () => {
  env = await makeContext(
    { default: { provider: 'memory' } },
    { config: { retentionPolicy: { keepDaily: 1, keepWeekly: 0, keepMonthly: 0, minAgeHours: 0 } } },
  );
});
afterEach(async () => env.cleanup());

describe('background maintenance service', () => {
  it('runOnce removes leftovers of interrupted work, then applies the retention policy', async () => {
    const Note = new Entity(schema, fields).withRuntime(env.context.runtime);
    await Note.upsert({ id: 1, label: 'a' });
    await backupEntity(env.context, Note, 'notes');
    const newest = await backupEntity(env.context, Note, 'notes');
    const orphanDir = join(env.dir, 'backups', 'crashed');
    mkdirSync(orphanDir, { recursive: true });
    const orphan = join(orphanDir, 'crashed-20240101-000000-deadbeef.zip');
    writeFileSync(orphan, 'partial');
    const old = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(orphan, old, old);
    const runs: MaintenanceRun[] = [];
    const service = new BackupMaintenanceService(env.context, { onRun: (r) => runs.push(r) });
    const run = await service.runOnce();
    expect(run.error).toBeUndefined();
    expect(run.leftovers.orphanArchives.map((o) => o.key)).toEqual(['crashed/crashed-20240101-000000-deadbeef.zip']);
    expect(run.retention).toEqual({ kept: 1, deleted: 1 });
    expect(runs).toHaveLength(1);
    const left = await new BackupDiscoveryService(env.context).discoverAllBackups();
    expect(left.backups.map((b) => b.id)).toEqual([newest.id]);
    await service.stop();
  });

  it('runs scheduled backups on their cron expression until stopped', async () => {
    const Note = new Entity(schema, fields).withRuntime(env.context.runtime);
    await Note.upsert({ id: 1, label: 'a' });
    const names: string[] = [];
    const service = new BackupMaintenanceService(env.context, {
      intervalMs: 3_600_000,
      schedules: [
        {
          cron: '* * * * * *', // every second
          name: 'scheduled-{date}',
          run: async (name) => {
            names.push(name);
            await backupEntity(env.context, Note, name);
          },
        },
      ],
    });
    service.start();
    for (let i = 0; i < 50 && names.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    await service.stop();
    expect(names[0]).toMatch(/^scheduled-\d{4}-\d{2}-\d{2}$/);
    const count = names.length;
    await new Promise((r) => setTimeout(r, 1200));
    expect(names.length).toBe(count); // stopped: no more runs
    const catalog = await new BackupDiscoveryService(env.context).discoverAllBackups();
    expect(catalog.backups.some((b) => b.name === names[0] && b.status === 'Completed')).toBe(true);
  });
});
