import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKoanConfig, parseConfigSection } from '@koan/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  azureBlobSettingsSchema,
  localSettingsSchema,
  parseSettings,
  StorageError,
  StorageProfiles,
  s3SettingsSchema,
  storageConfigSchema,
} from '../src/index.js';

const cwd = await mkdtemp(join(tmpdir(), 'koan-storage-config-'));
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

describe('storage settings from the environment are never altered', () => {
  it('S3: a bucket 2024 and a secret key 000123456789 arrive exactly as written', () => {
    const settings = profileSettings({
      Koan__Storage__Profiles__p__Provider: 's3',
      Koan__Storage__Profiles__p__Settings__Bucket: '2024',
      Koan__Storage__Profiles__p__Settings__AccessKeyId: '0042',
      Koan__Storage__Profiles__p__Settings__SecretAccessKey: '000123456789',
      Koan__Storage__Profiles__p__Settings__ForcePathStyle: 'true',
      Koan__Storage__Profiles__p__Settings__QueueSize: '4',
    });
    expect(parseSettings(s3SettingsSchema, settings, { profile: 'p', provider: 's3' })).toEqual({
      bucket: '2024',
      accessKeyId: '0042',
      secretAccessKey: '000123456789',
      forcePathStyle: true,
      queueSize: 4,
    });
  });

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

  it('local: a root of digits (and keys in any case) work', async () => {
    const loaded = loadKoanConfig({
      cwd,
      env: { KOAN__STORAGE__PROFILES__P__PROVIDER: 'local', KOAN__STORAGE__PROFILES__P__SETTINGS__ROOT: '2024' },
    });
    const profiles = await StorageProfiles.load(loaded.koan.storage, { cwd });
    expect(profiles.names()).toEqual(['P']);
    await profiles.get().put('x.txt', [Buffer.from('hi')]);
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(join(cwd, '2024', 'x.txt'), 'utf8')).toBe('hi');
    await profiles.close();
  });
});

describe('typos in Koan.Storage fail, naming the key and the known keys', () => {
  it('an unknown key of Koan.Storage or of a profile', () => {
    expect(configError(() => new StorageProfiles({ Profils: {} }, { cwd })).message).toContain(
      'Koan.Storage.Profils: unknown key; known keys: DefaultProfile, Profiles',
    );
    expect(
      configError(
        () => new StorageProfiles({ profiles: { main: { provider: 'local', setings: { root: 'x' } } } }, { cwd }),
      ).message,
    ).toContain('Koan.Storage.Profiles.main.Setings: unknown key; known keys: Provider, Settings');
  });

  it('an unknown local, S3 or Azure setting', () => {
    for (const key of ['rooot', 'path']) {
      const err = configError(() =>
        new StorageProfiles({ profiles: { main: { provider: 'local', settings: { [key]: './x' } } } }, { cwd }).get(),
      );
      expect(err.message).toContain(
        `Koan.Storage.Profiles.main.Settings.${key[0]!.toUpperCase()}${key.slice(1)}: unknown key; known keys: Root, PruneEmptyDirs, Fsync`,
      );
    }
    expect(
      configError(() =>
        parseSettings(s3SettingsSchema, { bucket: 'b', bucketNme: 'c' }, { profile: 'p', provider: 's3' }),
      ).message,
    ).toMatch(/Koan\.Storage\.Profiles\.p\.Settings\.BucketNme: unknown key; known keys: Bucket, BucketName, Region/);
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

describe('wrong-type storage settings say what was expected and what was given', () => {
  it('a number where text is wanted is not reported as missing', () => {
    const s3 = configError(() => parseSettings(s3SettingsSchema, { bucket: 2024 }, { profile: 'p', provider: 's3' }));
    expect(s3.message).toContain('Koan.Storage.Profiles.p.Settings.Bucket: expected text, got the number 2024');
    expect(s3.message).not.toMatch(/Bucket is required/);
    const local = configError(() =>
      parseSettings(localSettingsSchema, { root: 42 }, { profile: 'p', provider: 'local' }),
    );
    expect(local.message).toContain('Koan.Storage.Profiles.p.Settings.Root: expected text, got the number 42');
  });

  it('bad numbers, booleans and URLs; secrets are not shown', () => {
    const err = configError(() =>
      parseSettings(
        s3SettingsSchema,
        {
          bucket: 'b',
          queueSize: 'many',
          forcePathStyle: 'yes',
          endpoint: 'not a url',
          accessKeyId: 'a',
          secretAccessKey: 7,
        },
        { profile: 'p', provider: 's3' },
      ),
    );
    expect(err.message).toContain('Settings.QueueSize: expected a whole number (0 or more), got the text "many"');
    expect(err.message).toContain('Settings.ForcePathStyle: expected true or false, got the text "yes"');
    expect(err.message).toContain(
      'Settings.Endpoint: expected a URL (such as https://host/path), got the text "not a url"',
    );
    expect(err.message).toContain('Settings.SecretAccessKey: expected text, got a number (not shown)');
  });

  it('a missing bucket is still "is required"', () => {
    expect(configError(() => parseSettings(s3SettingsSchema, {}, { profile: 'p', provider: 's3' })).message).toContain(
      'Koan.Storage.Profiles.p.Settings.Bucket is required (the bucket name)',
    );
  });
});
