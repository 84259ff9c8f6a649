import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, t, unregisterEntity } from '@koan/data';
import { BackupContext } from '@koan/data-backup';
import { BackupMaintenanceService } from '@koan/data-backup/maintenance';
import { configJsonSchema } from '@koan/data-backup/schemas';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

defineEntity({ name: 'WarmupThing', key: 'id', source: 'warmSrc', fields: { id: t.integer(), label: t.string() } });
afterAll(() => unregisterEntity('WarmupThing'));

function configDir(
  backup: Record<string, unknown>,
  storage: Record<string, unknown> = { Profiles: { local: { Provider: 'local', Settings: { Root: './backups' } } } },
): string {
  const dir = mkdtempSync(join(tmpdir(), 'koan-ctx-'));
  writeFileSync(
    join(dir, 'koan.config.json'),
    JSON.stringify({
      Koan: {
        Data: { Sources: { warmSrc: { Provider: 'sqlite', Settings: { Path: 'app.sqlite' } } } },
        Storage: storage,
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

  it('startMaintenance(service) runs the service given, close() stops it; a second one is refused, naming why', async () => {
    const context = new BackupContext();
    const calls: string[] = [];
    const service = {
      intervalMs: 1000,
      start: () => void calls.push('start'),
      stop: async () => void calls.push('stop'),
    };
    expect(context.startMaintenance(service)).toBe(service);
    expect(context.maintenance).toBe(service);
    expect(context.startMaintenance()).toBe(service); // started once: the running one is returned
    const other = new BackupMaintenanceService(context);
    expect(() => context.startMaintenance(other)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringMatching(/already runs/) }),
    );
    await context.close();
    expect(calls).toEqual(['start', 'start', 'stop']);
  });

  it("MaintenanceInterval takes 30m / 6h / 1d, or a .NET TimeSpan as the spec's appsettings write it", async () => {
    for (const [text, ms] of [
      ['45m', 45 * 60_000],
      ['06:00:00', 6 * 3_600_000],
      ['1.00:30:00', 24.5 * 3_600_000],
    ] as const) {
      const dir = configDir({ EnableBackgroundMaintenance: true, MaintenanceInterval: text });
      const context = await BackupContext.fromConfig({ cwd: dir });
      expect(context.maintenance?.intervalMs, text).toBe(ms);
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    }
    for (const bad of ['25:00:00', '6:61:00', '1.2.3'])
      await expect(BackupContext.fromConfig({ cwd: configDir({ MaintenanceInterval: bad }) }), bad).rejects.toThrow(
        /MaintenanceInterval/,
      );
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

  it('env names are case-insensitive: KOAN__BACKUP__DEFAULTBATCHSIZE sets DefaultBatchSize', async () => {
    const dir = configDir({});
    const context = await BackupContext.fromConfig({
      cwd: dir,
      env: { KOAN__BACKUP__DEFAULTBATCHSIZE: '5', koan__backup__enablebackgroundmaintenance: 'FALSE' },
    });
    expect(context.config.defaultBatchSize).toBe(5);
    expect(context.config.enableBackgroundMaintenance).toBe(false);
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an env var naming an unknown section fails, naming the variable', async () => {
    const dir = configDir({});
    await expect(BackupContext.fromConfig({ cwd: dir, env: { Koan__Bakup__DefaultBatchSize: '5' } })).rejects.toThrow(
      /Koan__Bakup__DefaultBatchSize names the section 'Bakup'/,
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('a JSON env value is key-normalised like the file: RetentionPolicy={"KeepDaily":3}', async () => {
    const dir = configDir({});
    const context = await BackupContext.fromConfig({
      cwd: dir,
      env: { Koan__Backup__RetentionPolicy: '{"KeepDaily":3,"keepWeekly":2}' },
    });
    // Every keep rule is optional: only what is given applies (no implicit monthly count).
    expect(context.config.retentionPolicy).toEqual({ keepDaily: 3, keepWeekly: 2, minAgeHours: 1 });
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ExcludeEntities is a list of names from the file, or a JSON list from env; anything else names the key', async () => {
    const dir = configDir({ ExcludeEntities: ['audit_log', 'billing.events'] });
    const fromFile = await BackupContext.fromConfig({ cwd: dir });
    expect(fromFile.config.excludeEntities).toEqual(['audit_log', 'billing.events']);
    await fromFile.close();
    const fromEnv = await BackupContext.fromConfig({
      cwd: dir,
      env: { Koan__Backup__ExcludeEntities: '["sessions"]' },
    });
    expect(fromEnv.config.excludeEntities).toEqual(['sessions']);
    await fromEnv.close();
    expect(new BackupContext().config.excludeEntities).toEqual([]);
    expect(() => new BackupContext({ config: { excludeEntities: [''] } })).toThrow(/Koan\.Backup\.ExcludeEntities/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('typos in Koan.Storage fail instead of quietly backing up to ./backups', async () => {
    for (const [storage, expected] of [
      [
        { Profils: { main: { Provider: 'local', Settings: { Root: './main' } } } },
        /Koan\.Storage\.Profils: unknown key/,
      ],
      [
        { Profiles: { main: { Provider: 'local', Setings: { Root: './main' } } } },
        /Koan\.Storage\.Profiles\.main\.Setings: unknown key/,
      ],
      [
        { Profiles: { main: { Provider: 'local', Settings: { Path: './main' } } } },
        /Koan\.Storage\.Profiles\.main\.Settings\.Path: unknown key; known keys: Root/,
      ],
    ] as const) {
      const dir = configDir({}, storage);
      await expect(BackupContext.fromConfig({ cwd: dir })).rejects.toThrow(expected);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a wrong-type value says what was expected and what was given', async () => {
    const dir = configDir(
      { DefaultBatchSize: 'lots' },
      { Profiles: { main: { Provider: 'local', Settings: { Root: 42 } } } },
    );
    await expect(BackupContext.fromConfig({ cwd: dir })).rejects.toThrow(
      /Koan\.Backup\.DefaultBatchSize: expected a number, got the text "lots"/,
    );
    rmSync(dir, { recursive: true, force: true });
    const dir2 = configDir({}, { Profiles: { main: { Provider: 'local', Settings: { Root: 42 } } } });
    await expect(BackupContext.fromConfig({ cwd: dir2 })).rejects.toThrow(
      /Koan\.Storage\.Profiles\.main\.Settings\.Root: expected text, got the number 42/,
    );
    rmSync(dir2, { recursive: true, force: true });
  });
});

describe('koan.config.schema.json', () => {
  type Node = { properties?: Record<string, Node>; additionalProperties?: unknown; $ref?: string; allOf?: Node[] };
  const schema = configJsonSchema() as Node;
  const resolve = (node: Node): Node => {
    if (!node.$ref) return node;
    let target: unknown = schema;
    for (const seg of node.$ref.replace(/^#\//, '').split('/')) target = (target as Record<string, unknown>)[seg];
    return target as Node;
  };

  it('accepts the camelCase spelling of sections and keys (as the loader does), as aliases of the PascalCase ones', () => {
    const koan = resolve(schema.properties!.koan!);
    expect(koan).toBe(schema.properties!.Koan);
    for (const [camel, pascal] of [
      ['data', 'Data'],
      ['storage', 'Storage'],
      ['backup', 'Backup'],
    ] as const)
      expect(resolve(koan.properties![camel]!)).toBe(koan.properties![pascal]);
    const backup = koan.properties!.Backup!;
    expect(resolve(backup.properties!.defaultBatchSize!)).toBe(backup.properties!.DefaultBatchSize);
  });

  it("closes Koan.Storage, its profiles and each known provider's settings (additionalProperties false)", () => {
    const storage = schema.properties!.Koan!.properties!.Storage!;
    expect(storage.additionalProperties).toBe(false);
    const profile = (storage.properties!.Profiles as Node).additionalProperties as Node;
    expect(profile.additionalProperties).toBe(false);
    const local = profile.allOf!.find((c) => JSON.stringify((c as { if?: unknown }).if).includes('"local"')) as {
      then: Node;
    };
    const settings = local.then.properties!.Settings!;
    expect(settings.additionalProperties).toBe(false);
    expect(Object.keys(settings.properties!)).toEqual(
      expect.arrayContaining(['Root', 'root', 'PruneEmptyDirs', 'Fsync']),
    );
  });
});
