import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKoanConfig } from '@koan/core';
import { afterAll, describe, expect, it } from 'vitest';
import { localSettingsSchema, parseSettings, StorageError, StorageProfiles } from '../src/index.js';

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

describe('storage settings from the environment are never altered', () => {
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

  it('an unknown local setting', () => {
    for (const key of ['rooot', 'path']) {
      const err = configError(() =>
        new StorageProfiles({ profiles: { main: { provider: 'local', settings: { [key]: './x' } } } }, { cwd }).get(),
      );
      expect(err.message).toContain(
        `Koan.Storage.Profiles.main.Settings.${key[0]!.toUpperCase()}${key.slice(1)}: unknown key; known keys: Root, PruneEmptyDirs, Fsync`,
      );
    }
  });
});

describe('wrong-type storage settings say what was expected and what was given', () => {
  it('a number where text is wanted is not reported as missing', () => {
    const local = configError(() =>
      parseSettings(localSettingsSchema, { root: 42 }, { profile: 'p', provider: 'local' }),
    );
    expect(local.message).toContain('Koan.Storage.Profiles.p.Settings.Root: expected text, got the number 42');
  });
});
