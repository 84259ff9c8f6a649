/**
 * `list`, `query` and `stats` with one storage profile that cannot be reached (a real S3 profile on a closed loopback
 * port, retries turned down): the reachable profile's backups are shown, each unreachable profile is a warning line
 * (and `unavailableProfiles` in --json), and a command limited to the unreachable profile fails with its error.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataRuntime, defineEntity, t } from '@koan/data';
import { closedLoopbackPort, unreachableS3Settings } from '@koan/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIn } from './run-cli.js';

const UpCliNote = defineEntity({
  name: 'UpCliNote',
  key: 'id',
  source: 'upCliSql',
  fields: { id: t.integer(), text: t.string() },
});
const SOURCES = { upCliSql: { provider: 'sqlite', settings: { path: 'data.sqlite' } } };
let dir: string;
let dead: number;

const run = (argv: string[]) => runIn(dir, argv);

beforeAll(async () => {
  dead = await closedLoopbackPort();
  dir = mkdtempSync(join(tmpdir(), 'koan-cli-unavailable-'));
  writeFileSync(
    join(dir, 'koan.config.json'),
    JSON.stringify({
      Koan: {
        Data: { Sources: SOURCES },
        Storage: {
          DefaultProfile: 'local',
          Profiles: {
            local: { Provider: 'local', Settings: { Root: './backups' } },
            s3: {
              Provider: 's3',
              Settings: unreachableS3Settings(dead),
            },
          },
        },
      },
    }),
  );
  const rt = new DataRuntime({ cwd: dir, sources: SOURCES });
  await UpCliNote.withRuntime(rt).upsertMany(Array.from({ length: 5 }, (_, i) => ({ id: i, text: `note ${i}` })));
  await rt.close();
  const backup = await run(['backup', 'notes', '--entity', 'UpCliNote', '--tag', 'review']);
  expect(backup.code, backup.stderr).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const WARNING = /^Warning: storage profile s3 could not be listed; its backups are .*TRANSIENT: .*127\.0\.0\.1:\d+/m;

describe('koan-backup with an unreachable storage profile', () => {
  it('list shows the local backups and warns about s3; --json carries unavailableProfiles', async () => {
    const human = await run(['list']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^NAME\s+ID/);
    expect(human.stdout).toContain('notes');
    expect(human.stdout).toContain('1 backup in local');
    expect(human.stderr).toMatch(WARNING);
    expect(human.stderr.match(/^Warning: storage profile/gm)).toHaveLength(1);
    const json = await run(['list', '--json']);
    expect(json.code).toBe(0);
    expect(json.stderr).toBe('');
    expect(json.json()).toMatchObject({
      totalCount: 1,
      profiles: ['local'],
      unavailableProfiles: [{ profile: 's3', code: 'TRANSIENT', message: expect.stringContaining(`:${dead}`) }],
    });
  });

  it('query and stats do the same', async () => {
    const query = await run(['query', '--tag', 'review']);
    expect(query.code, query.stderr).toBe(0);
    expect(query.stdout).toContain('Showing 1-1 of 1 matching backups');
    expect(query.stderr).toMatch(WARNING);
    const queryJson = (await run(['query', '--json'])).json<{ totalCount: number; unavailableProfiles: unknown[] }>();
    expect(queryJson.totalCount).toBe(1);
    expect(queryJson.unavailableProfiles).toEqual([expect.objectContaining({ profile: 's3', code: 'TRANSIENT' })]);
    const stats = await run(['stats']);
    expect(stats.code, stats.stderr).toBe(0);
    expect(stats.stdout).toMatch(/backups:\s+1/);
    expect(stats.stderr).toMatch(WARNING);
    expect((await run(['stats', '--json'])).json()).toMatchObject({
      totalBackups: 1,
      unavailableProfiles: [{ profile: 's3', code: 'TRANSIENT' }],
    });
  });

  it('a command limited to the unreachable profile fails with its error', async () => {
    for (const argv of [
      ['list', '--profile', 's3'],
      ['query', '--profile', 's3'],
      ['stats', '--profile', 's3'],
    ]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/TRANSIENT/);
      expect(r.stdout).toBe('');
    }
  });
});
