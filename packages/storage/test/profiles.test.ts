import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { retry, StorageError, StorageProfiles, storageConfigSchema } from '../src/index.js';
import { readAll } from '../src/testing/index.js';

const cwd = await mkdtemp(join(tmpdir(), 'koan-profiles-'));
afterAll(() => rm(cwd, { recursive: true, force: true }));

async function configError(fn: () => unknown): Promise<StorageError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(StorageError);
    expect((e as StorageError).code).toBe('CONFIG');
    return e as StorageError;
  }
  throw new Error('expected a CONFIG error');
}

describe('storage profiles', () => {
  it('falls back to the embedded local profile at ./backups', async () => {
    const profiles = new StorageProfiles(undefined, { cwd });
    expect(profiles.names()).toEqual(['local']);
    expect(profiles.defaultName).toBe('local');
    const storage = profiles.get();
    expect(storage.provider).toBe('local');
    expect(profiles.get('local')).toBe(storage);
    await storage.put('x.txt', [Buffer.from('hi')]);
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(join(cwd, 'backups', 'x.txt'), 'utf8')).toBe('hi');
    await profiles.close();
  });

  it('builds named profiles and picks the default', async () => {
    const profiles = await StorageProfiles.load(
      {
        defaultProfile: 'fast',
        profiles: {
          fast: { provider: 'memory', settings: {} },
          disk: { provider: 'local', settings: { root: 'disk', fsync: 'false' } },
        },
      },
      { cwd },
    );
    expect(profiles.names().sort()).toEqual(['disk', 'fast']);
    expect(profiles.get().provider).toBe('memory');
    await profiles.get('disk').put('a', [Buffer.from('a')]);
    expect((await readAll(await profiles.get('disk').get('a'))).toString()).toBe('a');
  });

  it('names the profile, key path and fix for an unknown provider', async () => {
    const err = await configError(() =>
      StorageProfiles.load({ profiles: { primary: { provider: 'ftp', settings: {} } } }, { cwd }),
    );
    expect(err.profile).toBe('primary');
    expect(err.message).toContain('Koan.Storage.Profiles.primary.Provider');
    expect(err.message).toContain('azure-blob');
  });

  it('names the key path of an invalid setting', async () => {
    const err = await configError(() =>
      new StorageProfiles({ profiles: { archive: { provider: 'local', settings: { root: 42 } } } }, { cwd }).get(),
    );
    expect(err.message).toContain('Koan.Storage.Profiles.archive.Settings.Root');
  });

  it('requires a default when several profiles exist, and an existing one', async () => {
    const two = { profiles: { a: { provider: 'memory' }, b: { provider: 'memory' } } };
    expect((await configError(() => new StorageProfiles(two))).message).toContain('DefaultProfile');
    expect((await configError(() => new StorageProfiles({ ...two, defaultProfile: 'c' }))).message).toContain("'c'");
    expect(
      (await configError(() => new StorageProfiles({ ...two, defaultProfile: 'a' }).get('zzz'))).message,
    ).toContain('Koan.Storage.Profiles.zzz');
  });

  // biome-ignore lint/suspicious/noTemplateCurlyInString: the setting syntax under test
  it('resolves ${env:NAME} references and reports missing variables', async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the setting syntax under test
    const config = { profiles: { p: { provider: 'local', settings: { root: '${env:KOAN_TEST_ROOT}/sub' } } } };
    const profiles = new StorageProfiles(config, { cwd, env: { KOAN_TEST_ROOT: 'from-env' } });
    await profiles.get().put('f', [Buffer.from('1')]);
    const { stat } = await import('node:fs/promises');
    expect((await stat(join(cwd, 'from-env/sub/f'))).size).toBe(1);
    const err = await configError(() => new StorageProfiles(config, { cwd, env: {} }).get());
    expect(err.message).toContain('KOAN_TEST_ROOT');
    expect(err.message).toContain('Koan.Storage.Profiles.p.Settings.Root');
  });

  it('loads the s3 and azure-blob providers from their packages on demand', async () => {
    const config = {
      defaultProfile: 's3',
      profiles: {
        s3: { provider: 's3', settings: { bucket: 'b', region: 'us-east-1' } },
        az: {
          provider: 'azure-blob',
          settings: { connectionString: 'UseDevelopmentStorage=true', containerName: 'backups' },
        },
      },
    };
    const err = await configError(() => new StorageProfiles(config).get('s3'));
    expect(err.message).toContain('StorageProfiles.load');
    const profiles = await StorageProfiles.load(config);
    expect(profiles.get('s3').provider).toBe('s3');
    expect(profiles.get('az').provider).toBe('azure-blob');
    const missing = await configError(() =>
      StorageProfiles.load({ profiles: { s3: { provider: 's3', settings: { region: 'x' } } } }),
    );
    expect(missing.message).toContain('Koan.Storage.Profiles.s3.Settings.Bucket');
  });

  it('exports a JSON schema for editors', () => {
    const schema = z.toJSONSchema(storageConfigSchema, { io: 'input' }) as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties)).toEqual(['defaultProfile', 'profiles']);
  });
});

describe('retry (one call)', () => {
  it('retries transient failures with backoff and gives up on permanent ones', async () => {
    let calls = 0;
    const value = await retry(
      async () => {
        if (++calls < 3) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
        return 'ok';
      },
      { retries: 5, baseDelayMs: 1, maxDelayMs: 2 },
    );
    expect([value, calls]).toEqual(['ok', 3]);
    calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw Object.assign(new Error('denied'), { statusCode: 403 });
        },
        { retries: 5, baseDelayMs: 1 },
      ),
    ).rejects.toThrow('denied');
    expect(calls).toBe(1);
    calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw Object.assign(new Error('busy'), { statusCode: 503 });
        },
        { retries: 2, baseDelayMs: 1 },
      ),
    ).rejects.toThrow('busy');
    expect(calls).toBe(3);
  });

  it('stops waiting when the signal aborts', async () => {
    const controller = new AbortController();
    const p = retry(
      async () => {
        throw Object.assign(new Error('busy'), { statusCode: 503 });
      },
      { retries: 10, baseDelayMs: 60_000, maxDelayMs: 60_000, signal: controller.signal, isTransient: () => true },
    );
    setImmediate(() => controller.abort(new Error('stop')));
    await expect(p).rejects.toThrow('stop');
  });
});
