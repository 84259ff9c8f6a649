import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { DataProvider } from '../src/adapter.js';
import { createMemoryAdapter } from '../src/adapters/memory.js';
import { dataConfigSchema, loadKoanConfig, parseConfigSection, validateConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { DataRuntime } from '../src/runtime.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dirWith(config?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'koan-config-'));
  dirs.push(dir);
  if (config !== undefined) writeFileSync(join(dir, 'koan.config.json'), JSON.stringify(config));
  return dir;
}

/** Settings as the adapter packages declare them (`provider.settings`); the runtime converts by these. */
const DECLARED: Record<string, DataProvider['settings']> = {
  postgres: { password: 'text', user: 'text', database: 'text', poolSize: 'number', port: 'number' },
  mysql: { password: 'text', user: 'text', poolSize: 'number', port: 'number' },
  sqlite: { path: 'text', walMode: 'boolean', busyTimeoutMs: 'number', foreignKeys: 'boolean' },
  redis: { url: 'text', keyPrefix: 'text', db: 'number' },
};

/** A provider under a built-in name that records the settings the runtime hands it. */
function capturing(name: string) {
  const seen: Record<string, unknown>[] = [];
  const settings = DECLARED[name];
  const provider: DataProvider = {
    name,
    ...(settings ? { settings } : {}),
    create: (settings) => {
      seen.push(settings);
      return createMemoryAdapter();
    },
  };
  return { provider, seen };
}

/** The settings a source's provider gets, from koan.config.json + env, through the runtime. */
async function settingsOf(
  provider: string,
  env: Record<string, string>,
  file?: unknown,
): Promise<Record<string, unknown>> {
  const cwd = dirWith(file);
  const loaded = loadKoanConfig({ cwd, env });
  const data = parseConfigSection(dataConfigSchema, loaded.koan.data, ['Koan', 'Data'], loaded.file);
  const { provider: p, seen } = capturing(provider);
  const runtime = new DataRuntime({ cwd, providers: [p], ...(data.sources ? { sources: data.sources } : {}) });
  await runtime.adapter('default');
  await runtime.close();
  return seen[0]!;
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('Koan__ environment values are never altered', () => {
  it('keeps text made of digits or true/false as given: a password 0123 stays "0123"', () => {
    const loaded = loadKoanConfig({
      cwd: dirWith(),
      env: {
        Koan__Data__Sources__default__Provider: 'postgres',
        Koan__Data__Sources__default__Settings__Password: '0123',
        Koan__Data__Sources__default__Settings__User: 'true',
        Koan__Data__Sources__default__Settings__Database: '000123456789',
      },
    });
    expect((loaded.koan.data as { sources: { default: { settings: unknown } } }).sources.default.settings).toEqual({
      password: '0123',
      user: 'true',
      database: '000123456789',
    });
  });

  it('data sources: text settings reach the provider exactly, number and boolean ones converted', async () => {
    const pg = await settingsOf('postgres', {
      Koan__Data__Sources__default__Provider: 'postgres',
      Koan__Data__Sources__default__Settings__Password: '0123',
      Koan__Data__Sources__default__Settings__User: '42',
      Koan__Data__Sources__default__Settings__PoolSize: '8',
      Koan__Data__Sources__default__Settings__Port: '5433',
    });
    expect(pg).toEqual({ password: '0123', user: '42', poolSize: 8, port: 5433 });

    const sqlite = await settingsOf('sqlite', {
      Koan__Data__Sources__default__Provider: 'sqlite',
      Koan__Data__Sources__default__Settings__Path: '2024',
      Koan__Data__Sources__default__Settings__BusyTimeoutMs: '250',
      Koan__Data__Sources__default__Settings__ForeignKeys: 'false',
      Koan__Data__Sources__default__Settings__WalMode: 'True',
    });
    expect(sqlite).toEqual({ path: '2024', busyTimeoutMs: 250, foreignKeys: false, walMode: true });

    const redis = await settingsOf('redis', {
      Koan__Data__Sources__default__Provider: 'redis',
      Koan__Data__Sources__default__Settings__KeyPrefix: '007',
      Koan__Data__Sources__default__Settings__Db: '2',
    });
    expect(redis).toEqual({ keyPrefix: '007', db: 2 });
  });

  it('a JSON-looking secret given where text is wanted arrives as the exact text', async () => {
    const mysql = await settingsOf('mysql', {
      Koan__Data__Sources__default__Provider: 'mysql',
      Koan__Data__Sources__default__Settings__Password: '[1, 2]',
    });
    expect(mysql).toEqual({ password: '[1, 2]' });
  });

  it('a data setting of the wrong kind is refused naming the setting, without showing a secret', async () => {
    const err = await settingsOf(
      'postgres',
      {},
      {
        Koan: {
          Data: { Sources: { default: { Provider: 'postgres', Settings: { Password: 123, PoolSize: 'many' } } } },
        },
      },
    ).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('CONFIG_INVALID');
    expect((err as Error).message).toMatch(
      /Koan\.Data\.Sources\.default\.Settings\.Password: expected text, got a number \(not shown\)/,
    );
    expect((err as Error).message).not.toContain('123');
  });

  it('a setting the provider does not read (a typo) is refused, naming it and the known settings', async () => {
    const err = await settingsOf('postgres', {
      Koan__Data__Sources__default__Provider: 'postgres',
      Koan__Data__Sources__default__Settings__Pasword: 'secret',
    }).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((err as Error).message).toMatch(
      /Koan\.Data\.Sources\.default\.Settings\.Pasword: not a setting of the postgres provider \(its settings: password, user, database, poolSize, port\)/,
    );
    expect((err as Error).message).not.toContain('secret');
  });

  it('parseConfigSection converts env text only where the schema wants a number or a boolean', () => {
    const schema = z.object({ n: z.number().int(), b: z.boolean(), s: z.string(), u: z.string().optional() }).strict();
    const loaded = loadKoanConfig({
      cwd: dirWith(),
      env: {
        Koan__Backup__N: '250',
        Koan__Backup__B: 'TRUE',
        Koan__Backup__S: '000123',
        Koan__Backup__U: 'false',
      },
    });
    expect(parseConfigSection(schema, loaded.koan.backup, ['Koan', 'Backup'])).toEqual({
      n: 250,
      b: true,
      s: '000123',
      u: 'false',
    });
  });
});

describe('Koan__ environment names', () => {
  it('match sections and keys case-insensitively', () => {
    const cwd = dirWith({ Koan: { Data: { Sources: { main: { Provider: 'sqlite', Settings: { Path: 'a.db' } } } } } });
    const loaded = loadKoanConfig({
      cwd,
      env: { KOAN__DATA__SOURCES__MAIN__SETTINGS__PATH: 'b.db', koan__data__sources__extra__provider: 'memory' },
    });
    const data = parseConfigSection(dataConfigSchema, loaded.koan.data, ['Koan', 'Data']);
    expect(data.sources).toEqual({
      main: { provider: 'sqlite', settings: { path: 'b.db' } },
      extra: { provider: 'memory' },
    });
    const schema = z.object({ defaultBatchSize: z.number() }).strict();
    const upper = loadKoanConfig({ cwd, env: { KOAN__BACKUP__DEFAULTBATCHSIZE: '5' } });
    expect(parseConfigSection(schema, upper.koan.backup, ['Koan', 'Backup'])).toEqual({ defaultBatchSize: 5 });
  });

  it('an env var naming an unknown section fails, naming the variable', () => {
    for (const name of ['Koan__Bakup__DefaultBatchSize', 'KOAN__STORGE__DEFAULTPROFILE']) {
      const err = thrown(() => loadKoanConfig({ cwd: dirWith(), env: { [name]: '5' } }));
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe('CONFIG_INVALID');
      expect(err.message).toContain(name);
      expect(err.message).toMatch(/Koan__Data__.*Koan__Storage__.*Koan__Backup__/);
    }
  });

  it('JSON values have their keys normalised like the file (names of sources kept)', () => {
    const loaded = loadKoanConfig({
      cwd: dirWith(),
      env: { Koan__Data__Sources: '{"Main":{"Provider":"sqlite","Settings":{"Path":"x.db"}}}' },
    });
    expect(parseConfigSection(dataConfigSchema, loaded.koan.data, ['Koan', 'Data'])).toEqual({
      sources: { Main: { provider: 'sqlite', settings: { path: 'x.db' } } },
    });
  });

  it('a list item is set by its index (Koan__Backup__X__0__Key), the rest of the list kept; an index starts a list', () => {
    const cwd = dirWith({ Koan: { Backup: { Targets: [{ Name: 'a', Hours: 1 }, { Name: 'b' }] } } });
    const loaded = loadKoanConfig({
      cwd,
      env: {
        Koan__Backup__Targets__0__Hours: '5',
        Koan__Backup__Targets__1__Tag: 'x',
        Koan__Backup__Names__0: 'first',
        Koan__Data__Sources__0__Provider: 'memory',
      },
    });
    const schema = z
      .object({
        targets: z.array(z.object({ name: z.string(), hours: z.number().optional(), tag: z.string().optional() })),
        names: z.array(z.string()),
      })
      .strict();
    expect(parseConfigSection(schema, loaded.koan.backup, ['Koan', 'Backup'])).toEqual({
      targets: [
        { name: 'a', hours: 5 },
        { name: 'b', tag: 'x' },
      ],
      names: ['first'],
    });
    // An index past the end leaves a hole, refused by name rather than skipped.
    const gap = loadKoanConfig({ cwd, env: { Koan__Backup__Names__1: 'second' } });
    expect(() => parseConfigSection(schema, gap.koan.backup, ['Koan', 'Backup'])).toThrow(
      'Koan.Backup.Names.0 is required (text)',
    );
    // In a map of names, "0" is a name.
    expect(loaded.koan.data).toEqual({ sources: { '0': { provider: 'memory' } } });
  });

  it('the file section and root names are case-insensitive too', () => {
    const loaded = loadKoanConfig({
      cwd: dirWith({ koan: { DATA: { Sources: { default: { Provider: 'memory' } } } } }),
      env: {},
    });
    expect(parseConfigSection(dataConfigSchema, loaded.koan.data, ['Koan', 'Data'])).toEqual({
      sources: { default: { provider: 'memory' } },
    });
  });
});

describe('config error messages', () => {
  const schema = z
    .object({
      bucket: z.string().min(1),
      secretAccessKey: z.string().optional(),
      level: z.number().int().min(0).max(9).optional(),
      mode: z.enum(['fast', 'small']).optional(),
    })
    .strict();

  it('say what was expected and what was given (secrets not shown), and list the known keys', () => {
    const result = validateConfig(schema, { bucket: 2024, secretAccessKey: 123456, level: 12, mode: 'tiny', extra: 1 });
    expect(result.success).toBe(false);
    const messages = result.success ? [] : result.problems.map((p) => `${p.path.join('.')}: ${p.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([
        'bucket: expected text, got the number 2024',
        'secretAccessKey: expected text, got a number (not shown)',
        'level: expected a whole number <= 9, got the number 12',
        'mode: expected one of "fast", "small", got the text "tiny"',
        'extra: unknown key; known keys: Bucket, SecretAccessKey, Level, Mode',
      ]),
    );
  });

  it('a missing value is "is required", and parseConfigSection names the path and the env var', () => {
    const err = thrown(() => parseConfigSection(schema, {}, ['Koan', 'Storage'], 'koan.config.json'));
    expect(err.message).toContain(
      '- Koan.Storage.Bucket is required (text) (set it in koan.config.json or with env Koan__Storage__Bucket)',
    );
  });
});

describe('keys that would change an object instead of setting a value', () => {
  const rawDir = (text: string) => {
    const dir = dirWith();
    writeFileSync(join(dir, 'koan.config.json'), text);
    return dir;
  };

  it('__proto__, constructor and prototype are refused in the file, naming where, never dropped', () => {
    for (const [text, where] of [
      ['{"Koan":{"__proto__":{}}}', "Koan uses the key '__proto__'"],
      [
        '{"Koan":{"Storage":{"Profiles":{"__proto__":{"Provider":"local"}}}}}',
        "Koan.Storage.Profiles uses the key '__proto__'",
      ],
      [
        '{"Koan":{"Data":{"Sources":{"constructor":{"Provider":"sqlite"}}}}}',
        "Koan.Data.Sources uses the key 'constructor'",
      ],
      [
        '{"Koan":{"Backup":{"RetentionPolicy":{"Prototype":1}}}}',
        "Koan.Backup.RetentionPolicy uses the key 'Prototype'",
      ],
    ] as const) {
      const err = thrown(() => loadKoanConfig({ cwd: rawDir(text), env: {} }));
      expect(err, text).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe('CONFIG_INVALID');
      expect(err.message, text).toContain(where);
      expect(err.message).toMatch(/Rename or remove it/);
    }
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  it('and in environment variable names', () => {
    for (const name of ['Koan__Backup__constructor', 'Koan__Storage__Profiles__prototype__Provider']) {
      const err = thrown(() => loadKoanConfig({ cwd: dirWith(), env: { [name]: 'x' } }));
      expect(err.message, name).toContain(`Environment variable ${name} uses the key`);
    }
  });

  it('$schema and $comment are for editors and people: ignored', () => {
    const dir = dirWith({
      $schema: './s.json',
      $comment: ['x'],
      Koan: { $comment: 'y', Backup: { DefaultBatchSize: 5 } },
    });
    expect(loadKoanConfig({ cwd: dir, env: {} }).koan).toEqual({ backup: { defaultBatchSize: 5 } });
  });
});
