import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKoanConfig, parseConfigSection } from '@koan/core';
import { parseSettings, StorageError, storageConfigSchema } from '@koan/storage';
import { afterAll, describe, expect, it } from 'vitest';
import { settingsSchema as azureBlobSettingsSchema } from '../src/index.js';

const cwd = await mkdtemp(join(tmpdir(), 'koan-azure-settings-'));
afterAll(() => rm(cwd, { recursive: true, force: true }));

function configError(fn: () => unknown): StorageError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(StorageError);
    expect((e as StorageError).code).toBe('CONFIG');
    return e as StorageError;
  }
  throw new Error('expected a CONFIG error');
}

/** `Koan.Storage.Profiles.<profile>.Settings` as the config loader and `parseConfigSection` leave them. */
function profileSettings(env: Record<string, string>, profile = 'p'): Record<string, unknown> {
  const loaded = loadKoanConfig({ cwd, env });
  const storage = parseConfigSection(storageConfigSchema, loaded.koan.storage, ['Koan', 'Storage']);
  return storage.profiles[profile]!.settings;
}

describe('Azure settings from the environment are never altered', () => {
  it('Azure: an account and container named with digits are accepted', () => {
    const settings = profileSettings({
      Koan__Storage__Profiles__p__Provider: 'azure-blob',
      Koan__Storage__Profiles__p__Settings__AccountName: '12345',
      Koan__Storage__Profiles__p__Settings__AccountKey: '0123',
      Koan__Storage__Profiles__p__Settings__ContainerName: '2024',
    });
    expect(parseSettings(azureBlobSettingsSchema, settings, { profile: 'p', provider: 'azure-blob' })).toMatchObject({
      accountName: '12345',
      accountKey: '0123',
      containerName: '2024',
    });
  });
});

describe('typos in Azure settings fail, naming the key and the known keys', () => {
  it('an unknown Azure setting', () => {
    expect(
      configError(() =>
        parseSettings(
          azureBlobSettingsSchema,
          { connectionString: 'UseDevelopmentStorage=true', containerName: 'c1x', containr: 'x' },
          { profile: 'p', provider: 'azure-blob' },
        ),
      ).message,
    ).toMatch(/Settings\.Containr: unknown key; known keys: ConnectionString, AccountName/);
  });
});

describe('timeouts', () => {
  it('ConnectionTimeoutMs and RequestTimeoutMs are whole numbers of milliseconds from 1', () => {
    const base = { connectionString: 'UseDevelopmentStorage=true', containerName: 'c1x' };
    expect(
      parseSettings(
        azureBlobSettingsSchema,
        { ...base, connectionTimeoutMs: '2500', requestTimeoutMs: 30_000 },
        { profile: 'p', provider: 'azure-blob' },
      ),
    ).toMatchObject({ connectionTimeoutMs: 2500, requestTimeoutMs: 30_000 });
    const err = configError(() =>
      parseSettings(
        azureBlobSettingsSchema,
        { ...base, connectionTimeoutMs: 'soon' },
        { profile: 'p', provider: 'azure-blob' },
      ),
    );
    expect(err.message).toContain('Koan.Storage.Profiles.p.Settings.ConnectionTimeoutMs: expected a whole number');
  });
});
