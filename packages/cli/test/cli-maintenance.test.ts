import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataRuntime, defineEntity, t } from '@koan/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliIO, runCli } from '../src/index.js';
import { runIn } from './run-cli.js';

const MaintNote = defineEntity({
  name: 'MaintNote',
  key: 'id',
  source: 'maintSql',
  fields: { id: t.integer(), text: t.string() },
});
const SOURCES = { maintSql: { provider: 'sqlite', settings: { path: 'data.sqlite' } } };
let dir: string;

const run = (argv: string[], io: Partial<CliIO> = {}) => runIn(dir, argv, io);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'koan-cli-maint-'));
  writeFileSync(
    join(dir, 'koan.config.json'),
    JSON.stringify({
      Koan: {
        Data: { Sources: SOURCES },
        Storage: {
          DefaultProfile: 'local',
          Profiles: {
            local: { Provider: 'local', Settings: { Root: './backups' } },
            offsite: { Provider: 'local', Settings: { Root: './offsite' } },
          },
        },
        Backup: { RetentionPolicy: { KeepDaily: 1, KeepWeekly: 0, KeepMonthly: 0, MinAgeHours: 0 } },
      },
    }),
  );
  const rt = new DataRuntime({ cwd: dir, sources: SOURCES });
  await MaintNote.withRuntime(rt).upsertMany(Array.from({ length: 25 }, (_, i) => ({ id: i, text: `note ${i}` })));
  await rt.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('koan-backup copy, cleanup and prune', () => {
  it('copy streams a backup to another profile, verifies it there and publishes it', async () => {
    expect((await run(['backup', 'notes', '--entity', 'MaintNote'])).code).toBe(0);
    const r = await run(['copy', 'notes', '--to', 'offsite', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ name: 'notes', from: 'local', to: 'offsite' });
    const offsite = await run(['list', '--profile', 'offsite', '--json']);
    expect(offsite.json<{ backups: { name: string }[] }>().backups.map((b) => b.name)).toEqual(['notes']);
    const v = await run(['validate', 'notes', '--profile', 'offsite', '--json']);
    expect(v.json<{ isValid: boolean }>().isValid).toBe(true);
  });

  it('copy without --to is a usage error that names the flag', async () => {
    const r = await run(['copy', 'notes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--to');
  });

  it('cleanup never deletes an archive at a final key: one that does not open is kept as damaged, and --delete-damaged removes it', async () => {
    mkdirSync(join(dir, 'backups', 'crashed'), { recursive: true });
    const key = 'crashed/crashed-20240101-000000-deadbeef.zip';
    const orphan = join(dir, 'backups', key);
    writeFileSync(orphan, 'partial');
    const old = new Date(Date.now() - 3 * 3_600_000);
    utimesSync(orphan, old, old);
    const dry = await run(['cleanup', '--dry-run', '--json']);
    expect(dry.json<{ orphanArchives: unknown[] }>().orphanArchives).toMatchObject([
      { key, state: 'damaged', action: 'kept' },
    ]);
    const real = await run(['cleanup']);
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toContain('1 archive(s) without a sidecar (1 damaged): kept');
    expect(real.stdout).toContain(`kept: damaged (not a ZIP that opens: `);
    expect(real.stdout).toContain(
      `check it with koan-backup validate ${key} --profile local, delete it with koan-backup cleanup --delete-damaged ${key} --profile local`,
    );
    expect(readdirSync(join(dir, 'backups', 'crashed'))).toHaveLength(1);
    // The commands it names work: validate says why (exit 3); the delete asks for confirmation, then removes it.
    const check = await run(['validate', key, '--profile', 'local']);
    expect(check.code).toBe(3);
    expect(check.stderr).toMatch(/not a restorable Koan archive \(damaged\): not a ZIP that opens/);
    const unconfirmed = await run(['cleanup', '--delete-damaged', key, '--profile', 'local']);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain(`koan-backup cleanup --delete-damaged ${key} --profile local --yes`);
    expect((await run(['cleanup', '--delete-damaged', key, '--dry-run'])).code).toBe(2);
    expect((await run(['cleanup', '--yes'])).code).toBe(2); // --yes confirms nothing else
    const deleted = await run(['cleanup', '--delete-damaged', key, '--profile', 'local', '--yes']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toMatch(/^Deleted local:crashed\/crashed-20240101-000000-deadbeef\.zip \(7 B\), damaged: /);
    expect(existsSync(orphan)).toBe(false);
  });

  it('prune applies the configured retention policy (keep 1 daily) after confirmation', async () => {
    expect((await run(['backup', 'notes', '--entity', 'MaintNote'])).code).toBe(0);
    const refused = await run(['prune']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^Hint: Add --yes to confirm: koan-backup prune \.\.\. --yes$/m);
    const dry = await run(['prune', '--dry-run', '--profile', 'local', '--json']);
    const plan = dry.json<{ keep: unknown[]; remove: { name: string }[] }>();
    expect(plan.keep).toHaveLength(1);
    expect(plan.remove.map((b) => b.name)).toEqual(['notes']);
    const done = await run(['prune', '--profile', 'local', '--yes', '--json']);
    expect(done.code, done.stderr).toBe(0);
    expect(done.json<{ deleted: unknown[] }>().deleted).toHaveLength(1);
    const left = await run(['list', '--profile', 'local', '--json']);
    expect(left.json<{ backups: unknown[] }>().backups).toHaveLength(1);
  });

  it('prune never deletes the newest healthy backup: a policy of zeros is refused, one --keep-* flag is enough', async () => {
    for (const name of ['zeros', 'zeros', 'other'])
      expect((await run(['backup', name, '--entity', 'MaintNote'])).code).toBe(0);
    // The repro of the issue: this deleted every backup, the newest included.
    const zeros = await run(['prune', '--keep-daily', '0', '--keep-weekly', '0', '--keep-monthly', '0', '--yes']);
    expect(zeros.code).toBe(2);
    expect(zeros.stderr).toMatch(/keeps something/);
    expect(
      (await run(['list', '--json'])).json<{ backups: { name: string }[] }>().backups.filter((b) => b.name === 'zeros'),
    ).toHaveLength(2);
    // One rule alone, scoped to one name: the plan shows each backup once, with its profile, size and reasons.
    const dry = await run(['prune', '--keep-last', '1', '--name', 'zeros', '--min-age-hours', '0', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    const rows = dry.stdout.split('\n').filter((l) => / zeros /.test(l));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(
      /^keep\s+zeros\s+\S+ \S+Z\s+local\s+[\d.]+ \S+\s+newest healthy backup of its name in this profile, last 1$/,
    );
    expect(rows[1]).toMatch(/^would delete\s+zeros .* no rule keeps it$/);
    expect(dry.stdout).toMatch(/Would free [\d.]+ \S+ \(1 backup\(s\)\)/);
    expect(dry.stdout).not.toMatch(/ other /); // outside --name: not even listed as a candidate
    const json = await run([
      'prune',
      '--keep-last',
      '1',
      '--name',
      'zeros',
      '--min-age-hours',
      '0',
      '--dry-run',
      '--json',
    ]);
    const plan = json.json<{ keep: { backup: { name: string }; reasons: string[] }[]; freedBytes: number }>();
    expect(plan.keep.find((k) => k.backup.name === 'other')?.reasons).toEqual(['outside the scope']);
    expect(plan.freedBytes).toBeGreaterThan(0);
  });

  it('prune --name that no backup has exits 4 listing the names there, and plans nothing', async () => {
    const r = await run(['prune', '--keep-last', '1', '--name', 'note', '--dry-run']);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^Error \[BACKUP_NOT_FOUND\]: No backup is named "note" in storage profiles local, offsite\. The backup names there: .*\bnotes\b/m,
    );
    const json = await run(['prune', '--keep-last', '1', '--name', 'notes', '--name', 'note', '--json']);
    expect(json.code).toBe(4);
    expect(json.json<{ error: { details: { names: string[]; known: string[] } } }>().error.details).toMatchObject({
      names: ['note'],
      known: expect.arrayContaining(['notes']),
    });
  });

  it('prune with no keep rule given or configured names Koan.Backup.RetentionPolicy and the --keep-* flags', async () => {
    for (const backup of [{}, { RetentionPolicy: { MinAgeHours: 0, ProtectedTags: ['release'] } }]) {
      const other = mkdtempSync(join(tmpdir(), 'koan-cli-norules-'));
      try {
        writeFileSync(
          join(other, 'koan.config.json'),
          JSON.stringify({
            Koan: {
              Storage: { Profiles: { local: { Provider: 'local', Settings: { Root: './backups' } } } },
              Backup: backup,
            },
          }),
        );
        const r = await runIn(other, ['prune', '--dry-run']);
        expect(r.code, JSON.stringify(backup)).toBe(2);
        expect(r.stderr).toContain(
          'none given (--keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly or --keep-within), and Koan.Backup.RetentionPolicy in koan.config.json',
        );
        expect(r.stderr).toContain(backup.RetentionPolicy ? 'sets none' : 'is not set');
      } finally {
        rmSync(other, { recursive: true, force: true });
      }
    }
  });

  it('prune --protect-tag adds to the protected tags: backups tagged keep stay protected', async () => {
    expect((await run(['backup', 'tagged', '--entity', 'MaintNote', '--tag', 'keep'])).code).toBe(0);
    expect((await run(['backup', 'tagged', '--entity', 'MaintNote', '--tag', 'release'])).code).toBe(0);
    expect((await run(['backup', 'tagged', '--entity', 'MaintNote'])).code).toBe(0);
    const args = ['prune', '--keep-last', '1', '--name', 'tagged', '--min-age-hours', '0', '--protect-tag', 'release'];
    const plan = (await run([...args, '--dry-run', '--json'])).json<{
      policy: { protectedTags: string[] };
      keep: { reasons: string[] }[];
      remove: unknown[];
    }>();
    expect(plan.policy.protectedTags).toEqual(['keep', 'permanent', 'release']);
    expect(
      plan.keep
        .flatMap((k) => k.reasons)
        .filter((r) => r.startsWith('protected tag'))
        .sort(),
    ).toEqual(['protected tag "keep"', 'protected tag "release"']);
    expect(plan.remove).toEqual([]);
    const human = await run([...args, '--dry-run']);
    expect(human.stdout).toMatch(/backups tagged keep, permanent, release/);
  });

  it('cleanup keeps a complete archive that lost its sidecar, says how to adopt it, and --adopt brings it back', async () => {
    expect((await run(['backup', 'sidecar-lost', '--entity', 'MaintNote'])).code).toBe(0);
    const folder = join(dir, 'backups', 'sidecar-lost');
    const [sidecar] = readdirSync(folder).filter((f) => f.endsWith('.manifest.json'));
    rmSync(join(folder, sidecar!));
    const archive = readdirSync(folder).find((f) => f.endsWith('.zip'))!;
    const old = new Date(Date.now() - 3 * 3_600_000);
    utimesSync(join(folder, archive), old, old);
    const kept = await run(['cleanup']);
    expect(kept.code, kept.stderr).toBe(0);
    expect(kept.stdout).toContain(`kept: backup sidecar-lost`);
    expect(kept.stdout).toContain(`koan-backup adopt sidecar-lost/${archive} --profile local`);
    expect(readdirSync(folder)).toEqual([archive]);
    const adopted = await run(['cleanup', '--adopt']);
    expect(adopted.stdout).toContain('adopted: backup sidecar-lost');
    expect((await run(['validate', 'sidecar-lost'])).code).toBe(0);
  });
});

describe('koan-backup serve', () => {
  it('serves the API and dashboard on 127.0.0.1 until the signal stops it', async () => {
    const controller = new AbortController();
    let stdout = '';
    let announced: (url: string) => void = () => {};
    const url = new Promise<string>((resolve) => {
      announced = resolve;
    });
    const done = runCli(['serve', '--port', '0', '--json'], {
      stdout: {
        write: (s: string) => {
          stdout += s;
          if (stdout.includes('"url"')) announced(JSON.parse(stdout).url);
        },
      },
      stderr: { write: () => true },
      isTTY: false,
      cwd: dir,
      env: {},
      signal: controller.signal,
    });
    const base = await url;
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
    const stats = await fetch(new URL('/stats', base));
    expect(stats.status).toBe(200);
    expect(await stats.json()).toMatchObject({ totalBackups: expect.any(Number) });
    const page = await fetch(new URL('/', base));
    expect(await page.text()).toContain('<html');
    controller.abort();
    expect(await done).toBe(0);
  });

  it('refuses an unset token variable', async () => {
    const r = await run(['serve', '--token-env', 'NO_SUCH_TOKEN_VAR']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('NO_SUCH_TOKEN_VAR');
  });

  it('refuses a non-loopback --host without a token, or with a short one, as usage errors naming --token-env', async () => {
    const open = await run(['serve', '--host', '0.0.0.0', '--port', '0']);
    expect(open.code, open.stderr).toBe(2);
    expect(open.stderr).toMatch(
      /^Error \[USAGE\]: --host 0\.0\.0\.0: serving beyond this machine needs a bearer token/,
    );
    expect(open.stderr).toMatch(/^Hint: .*--token-env KOAN_BACKUP_TOKEN/m);
    // The library's option names mean nothing on the command line.
    expect(open.stderr).not.toMatch(/allowUnauthenticated|bearerToken\(/);
    const short = await run(['serve', '--host', '0.0.0.0', '--port', '0', '--token-env', 'T', '--json'], {
      env: { T: 'short' },
    });
    expect(short.code).toBe(2);
    expect(short.json()).toMatchObject({ error: { code: 'USAGE', exitCode: 2 } });
    expect(short.json<{ error: { message: string } }>().error.message).toBe(
      '--token-env T: the token is 5 characters; use at least 16.',
    );
  });
});
