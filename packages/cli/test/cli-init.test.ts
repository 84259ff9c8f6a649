import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKoanConfig } from '@koan/data/config';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runIn } from './run-cli.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'koan-init-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const configOf = () => JSON.parse(readFileSync(join(dir, 'koan.config.json'), 'utf8'));
/** The file a `$schema` reference names, from `dir`. */
const schemaFile = (ref: string) => (ref.startsWith('file:') ? fileURLToPath(ref) : join(dir, ref));

describe('koan-backup init', () => {
  it('writes a working config, without asking, that names its JSON Schema', async () => {
    const r = await runIn(dir, ['init']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Wrote .*koan\.config\.json\./m);
    const config = configOf();
    expect(existsSync(schemaFile(config.$schema))).toBe(true);
    expect(JSON.parse(readFileSync(schemaFile(config.$schema), 'utf8')).title).toBe('koan.config.json');
    expect(config.$comment.join('\n')).toMatch(/RetentionPolicy/);
    // Every command reads it: a backup of the (empty) default source, then the list.
    const list = await runIn(dir, ['list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.json<{ backups: unknown[] }>().backups).toEqual([]);
    expect((await runIn(dir, ['prune', '--dry-run'])).code).toBe(0);
  });

  it('refuses to overwrite an existing config unless --force', async () => {
    writeFileSync(join(dir, 'koan.config.json'), '{"mine": true}\n');
    const r = await runIn(dir, ['init']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/exists already; nothing was written/);
    expect(r.stderr).toMatch(/^Hint: Pass --force/m);
    expect(readFileSync(join(dir, 'koan.config.json'), 'utf8')).toBe('{"mine": true}\n');
    expect((await runIn(dir, ['init', '--force', '--storage', '/srv/koan'])).code).toBe(0);
    expect(configOf().Koan.Storage.Profiles.local.Settings.Root).toBe('/srv/koan');
  });

  it('never writes a password: it names the environment variable that supplies it', async () => {
    const r = await runIn(dir, ['init', '--source', 'postgres://app:s%40cret@db.example:5432/shop', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(join(dir, 'koan.config.json'), 'utf8');
    expect(text).not.toContain('cret');
    expect(r.stdout).not.toContain('cret');
    const out = r.json<{ passwordVariable: string }>();
    expect(out.passwordVariable).toBe('Koan__Data__Sources__default__Settings__Password');
    expect(configOf().Koan.Data.Sources.default).toEqual({
      Provider: 'postgres',
      Settings: { ConnectionString: 'postgres://app@db.example:5432/shop' },
    });
    // The variable it names is the one the loader applies to that setting.
    const loaded = loadKoanConfig({ cwd: dir, env: { [out.passwordVariable]: 's@cret' } });
    const source = (loaded.koan.data as { sources: Record<string, { settings: Record<string, unknown> }> }).sources
      .default;
    expect(source?.settings).toMatchObject({
      connectionString: 'postgres://app@db.example:5432/shop',
      password: 's@cret',
    });

    const human = await runIn(dir, ['init', '--force', '--source', 'mysql://root:pw@127.0.0.1:3306/test']);
    expect(human.stdout).toMatch(/source: mysql:\/\/root:\*\*\*@/);
    expect(human.stdout).toMatch(/set it in the environment as Koan__Data__Sources__default__Settings__Password/);
    expect(readFileSync(join(dir, 'koan.config.json'), 'utf8')).not.toContain(':pw@');
  });

  it('a bad --source is a usage error naming the forms', async () => {
    const r = await runIn(dir, ['init', '--source', 'oracle://x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Unsupported source scheme "oracle:"/);
    expect(existsSync(join(dir, 'koan.config.json'))).toBe(false);
  });

  it('demo writes the $schema reference too', async () => {
    const demo = join(dir, 'demo');
    const r = await runIn(dir, ['demo', '--dir', demo]);
    expect(r.code, r.stderr).toBe(0);
    const config = JSON.parse(readFileSync(join(demo, 'koan.config.json'), 'utf8'));
    expect(
      existsSync(config.$schema.startsWith('file:') ? fileURLToPath(config.$schema) : join(demo, config.$schema)),
    ).toBe(true);
  });
});
