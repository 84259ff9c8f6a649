import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKoanConfig, parseConfigSection } from '@koan/core';
import { parseSettings, StorageError, storageConfigSchema } from '@koan/storage';
import { afterAll, describe, expect, it } from 'vitest';
import { settingsSchema as s3SettingsSchema } from '../src/index.js';

const cwd = await mkdtemp(join(tmpdir(), 'koan-s3-settings-'));
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

describe('S3 settings from the environment are never altered', () => {
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
});

describe('typos in S3 settings fail, naming the key and the known keys', () => {
  it('an unknown S3 setting', () => {
    expect(
      configError(() =>
        parseSettings(s3SettingsSchema, { bucket: 'b', bucketNme: 'c' }, { profile: 'p', provider: 's3' }),
      ).message,
    ).toMatch(/Koan\.Storage\.Profiles\.p\.Settings\.BucketNme: unknown key; known keys: Bucket, BucketName, Region/);
  });
});

describe('wrong-type storage settings say what was expected and what was given', () => {
  it('a number where text is wanted is not reported as missing', () => {
    const s3 = configError(() => parseSettings(s3SettingsSchema, { bucket: 2024 }, { profile: 'p', provider: 's3' }));
    expect(s3.message).toContain('Koan.Storage.Profiles.p.Settings.Bucket: expected text, got the number 2024');
    expect(s3.message).not.toMatch(/Bucket is required/);
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

describe('timeouts', () => {
  it('ConnectionTimeoutMs and RequestTimeoutMs are whole numbers of milliseconds from 1, from the environment too', () => {
    const settings = profileSettings({
      Koan__Storage__Profiles__p__Provider: 's3',
      Koan__Storage__Profiles__p__Settings__Bucket: 'b',
      Koan__Storage__Profiles__p__Settings__ConnectionTimeoutMs: '2500',
      Koan__Storage__Profiles__p__Settings__RequestTimeoutMs: '30000',
    });
    expect(parseSettings(s3SettingsSchema, settings, { profile: 'p', provider: 's3' })).toMatchObject({
      connectionTimeoutMs: 2500,
      requestTimeoutMs: 30_000,
    });
    const zero = configError(() =>
      parseSettings(s3SettingsSchema, { bucket: 'b', requestTimeoutMs: 0 }, { profile: 'p', provider: 's3' }),
    );
    expect(zero.message).toContain(
      'Koan.Storage.Profiles.p.Settings.RequestTimeoutMs: must be at least 1 (milliseconds)',
    );
  });
});
