import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, t, unregisterEntity } from '@koan/data';
import { BackupContext } from '@koan/data-backup';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

defineEntity({ name: 'WarmupThing', key: 'id', source: 'warmSrc', fields: { id: t.integer(), label: t.string() } });
afterAll(() => unregisterEntity('WarmupThing'));

function configDir(backup: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'koan-ctx-'));
  writeFileSync(
    join(dir, 'koan.config.json'),
    JSON.stringify({
      Koan: {
        Data: { Sources: { warmSrc: { Provider: 'sqlite', Settings: { Path: 'app.sqlite' } } } },
        Storage: { Profiles: { local: { Provider: 'local', Settings: { Root: './backups' } } } },
        Backup: backup,
      },
    }),
  );
  return dir;
}

describe('Koan.Backup startup options', () => {
  it('a bad config given in code is a ConfigError naming the key path, like one read from koan.config.json', () => {
    const err = (() => {
      try {
        new BackupContext({ config: { defaultBatchSize: 0, retentionPolicy: { keepDaily: -1 } } });
      } catch (e) {
        return e as { code?: string; message: string };
      }
    })();
    expect(err?.code).toBe('CONFIG_INVALID');
    expect(err?.message).toMatch(/Koan\.Backup\.DefaultBatchSize/);
    expect(err?.message).toMatch(/Koan\.Backup\.RetentionPolicy\.KeepDaily/);
  });

  it('WarmupEntitiesOnStartup creates every entity table before fromConfig returns; EnableBackgroundMaintenance starts the service', async () => {
    const dir = configDir({
      WarmupEntitiesOnStartup: true,
      EnableBackgroundMaintenance: true,
      MaintenanceInterval: '1h',
    });
    const context = await BackupContext.fromConfig({ cwd: dir });
    const db = new Database(join(dir, 'app.sqlite'), { readonly: true });
    expect(db.prepare(`SELECT name FROM sqlite_master WHERE name = 'WarmupThing'`).pluck().get()).toBe('WarmupThing');
    db.close();
    expect(context.maintenance).toBeDefined();
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('both are off by default: no maintenance service runs', async () => {
    const dir = configDir({});
    const context = await BackupContext.fromConfig({ cwd: dir });
    expect(context.maintenance).toBeUndefined();
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a bad value names the key path, the expectation and the env var', async () => {
    const dir = configDir({ MaintenanceInterval: 'often' });
    await expect(BackupContext.fromConfig({ cwd: dir })).rejects.toThrow(
      /Koan\.Backup\.MaintenanceInterval: .*Koan__Backup__MaintenanceInterval/,
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('env vars override the file (Koan__Section__Key)', async () => {
    const dir = configDir({ DefaultBatchSize: 500 });
    const context = await BackupContext.fromConfig({ cwd: dir, env: { Koan__Backup__DefaultBatchSize: '250' } });
    expect(context.config.defaultBatchSize).toBe(250);
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
