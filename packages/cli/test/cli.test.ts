import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataRuntime, defineEntity, t } from '@koan/data';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../src/index.js';
import { runIn } from './run-cli.js';

// Entities are registered process-wide: unique names, and sources only this file configures.
const CliCustomer = defineEntity({
  name: 'CliCustomer',
  key: 'id',
  source: 'cliSql',
  fields: {
    id: t.uuid(),
    name: t.string(),
    balance: t.decimal(),
    joinedAt: t.datetime(),
    vip: t.boolean(),
    note: t.string().nullable().optional(),
  },
});
const CliOrder = defineEntity({
  name: 'CliOrder',
  key: 'id',
  source: 'cliSql',
  fields: { id: t.integer(), customerId: t.uuid().references('CliCustomer'), total: t.decimal(), lines: t.json() },
});
const CliNote = defineEntity({
  name: 'CliNote',
  key: 'id',
  source: 'cliJson',
  fields: { id: t.string(), text: t.string(), pinned: t.boolean() },
});

const SOURCES = {
  cliSql: { provider: 'sqlite', settings: { path: 'data.sqlite' } },
  cliJson: { provider: 'json', settings: { directory: 'json' } },
};

let dir: string;

const run = (argv: string[], io: Partial<CliIO> = {}) => runIn(dir, argv, io);

function uuid(i: number): string {
  return `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
}

async function withAppRuntime<T>(fn: (rt: DataRuntime) => Promise<T>): Promise<T> {
  const rt = new DataRuntime({ cwd: dir, sources: SOURCES });
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'koan-cli-test-'));
  writeFileSync(
    join(dir, 'koan.config.json'),
    JSON.stringify({
      Koan: {
        Data: { Sources: SOURCES },
        Storage: {
          DefaultProfile: 'local',
          Profiles: { local: { Provider: 'local', Settings: { Root: './backups' } } },
        },
      },
    }),
  );
  await withAppRuntime(async (rt) => {
    await CliCustomer.withRuntime(rt).upsertMany(
      Array.from({ length: 40 }, (_, i) => ({
        id: uuid(i),
        name: `Customer ${i}`,
        balance: `${i}.${String(i % 100).padStart(2, '0')}`,
        joinedAt: `2024-01-${String((i % 28) + 1).padStart(2, '0')}T10:00:00.123456Z`,
        vip: i % 5 === 0,
        ...(i % 2 ? { note: null } : {}),
      })),
    );
    await CliOrder.withRuntime(rt).upsertMany(
      Array.from({ length: 120 }, (_, i) => ({
        id: i + 1,
        customerId: uuid(i % 40),
        total: `${i * 3}.50`,
        lines: [{ sku: `S${i}`, qty: (i % 3) + 1 }],
      })),
    );
    await CliNote.withRuntime(rt).upsertMany(
      Array.from({ length: 10 }, (_, i) => ({ id: `n${i}`, text: `note ${i}`, pinned: i === 0 })),
    );
  });
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Sidecar {
  id: string;
  name: string;
  createdAt: string;
  status: string;
  entities: { entityType: string; itemCount: number }[];
  verification: { totalItemCount: number };
  archive: { key: string };
}

describe('koan-backup: backup → list → inspect → validate → query → stats → restore → delete', () => {
  let nightly: Sidecar;
  let ordersOnly: Sidecar;

  it('backs up every discovered entity by default (whole-app backup) and prints the manifest as JSON', async () => {
    const r = await run([
      'backup',
      'nightly',
      '--tag',
      'nightly',
      '--tag',
      'test',
      '--description',
      'CLI test',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    nightly = r.json<Sidecar>();
    expect(nightly.status).toBe('Completed');
    expect(nightly.entities.map((e) => e.entityType).sort()).toEqual(['CliCustomer', 'CliNote', 'CliOrder']);
    expect(nightly.verification.totalItemCount).toBe(170);
    expect(r.stderr).toBe('');
  });

  it('backs up one entity with --entity, uncompressed, and prints a human summary', async () => {
    const r = await run([
      'backup',
      'orders-only',
      '--entity',
      'CliOrder',
      '--no-compress',
      '--batch-size',
      '50',
      '--batch-bytes',
      '4KiB',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Backup orders-only completed');
    expect(r.stdout).toMatch(/CliOrder\s+root\s+sqlite \(cliSql\)\s+120/);
    const list = await run(['list', '--json']);
    ordersOnly = list.json<{ backups: Sidecar[] }>().backups.find((b) => b.name === 'orders-only')!;
    expect(ordersOnly).toBeDefined();
  });

  it('lists the catalog newest first, as JSON and as a table', async () => {
    const r = await run(['list', '--json']);
    expect(r.code).toBe(0);
    const catalog = r.json<{ backups: { name: string; id: string; status: string }[]; totalCount: number }>();
    expect(catalog.totalCount).toBe(2);
    expect(catalog.backups.map((b) => b.name)).toEqual(['orders-only', 'nightly']);
    const human = await run(['list']);
    expect(human.stdout).toMatch(/^NAME\s+ID\s+CREATED\s+STATUS\s+HEALTH\s+ENTITIES\s+ITEMS\s+SIZE\s+PROFILE/);
    expect(human.stdout).toContain(nightly.id);
  });

  it('inspects a backup: manifest summary, entity table and archive listing', async () => {
    const r = await run(['inspect', 'nightly']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`id:`);
    expect(r.stdout).toContain(nightly.id);
    expect(r.stdout).toMatch(/CliOrder\s+root\s+sqlite \(cliSql\)\s+120\s+.*snapshot\s+Completed/);
    expect(r.stdout).toContain('entities/CliCustomer.jsonl');
    expect(r.stdout).toContain('manifest.json');
    const j = (await run(['inspect', nightly.id, '--json'])).json<{
      backup: Sidecar;
      archiveEntries: { name: string }[];
    }>();
    expect(j.backup.id).toBe(nightly.id);
    expect(j.archiveEntries.map((e) => e.name)).toContain('verification/checksums.json');
  });

  it('validates a backup deeply', async () => {
    const r = await run(['validate', 'nightly']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Valid: nightly/);
    const j = (await run(['validate', nightly.id, '--json'])).json<{ isValid: boolean; checkedLines: number }>();
    expect(j).toMatchObject({ isValid: true, checkedLines: 170 });
  });

  it('queries the catalog with every kind of filter, sort and paging', async () => {
    const names = async (...flags: string[]) => {
      const r = await run(['query', ...flags, '--json']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      return r.json<{ backups: { name: string }[]; totalCount: number }>().backups.map((b) => b.name);
    };
    expect(await names('--tag', 'nightly')).toEqual(['nightly']);
    expect(await names('--entity', 'CliOrder')).toEqual(['orders-only', 'nightly']);
    expect(await names('--entity', 'CliNote')).toEqual(['nightly']);
    expect(await names('--sort', 'name', '--asc')).toEqual(['nightly', 'orders-only']);
    expect(await names('--search', 'cli test')).toEqual(['nightly']);
    expect(await names('--status', 'Completed', '--health', 'Healthy,Unknown,Warning')).toHaveLength(2);
    expect(await names('--status', 'Failed')).toEqual([]);
    expect(await names('--from', '1d', '--to', new Date(Date.now() + 60_000).toISOString())).toHaveLength(2);
    expect(await names('--to', '2000-01-01')).toEqual([]);
    expect(await names('--min-size', '1KB', '--max-size', '1GiB')).toHaveLength(2);
    expect(await names('--max-size', '10B')).toEqual([]);
    expect(await names('--profile', 'local', '--sort', 'createdAt', '--desc', '--skip', '1', '--take', '1')).toEqual([
      'nightly',
    ]);
    const human = await run(['query', '--tag', 'test']);
    expect(human.stdout).toContain('Showing 1-1 of 1 matching backups');
  });

  it('query: --take 0 counts without listing; date bounds are inclusive, a date-only --to ends its day', async () => {
    const counted = await run(['query', '--take', '0', '--json']);
    expect(counted.code, counted.stderr).toBe(0);
    expect(counted.json()).toMatchObject({ backups: [], totalCount: 2, skip: 0, take: 0 });
    expect((await run(['query', '--take', '0'])).stdout).toContain(
      '2 matching backups (--take 0: counted, not listed)',
    );
    const day = nightly.createdAt.slice(0, 10);
    const sameDay = await run(['query', '--tag', 'nightly', '--from', day, '--to', day, '--json']);
    expect(sameDay.code, sameDay.stderr).toBe(0);
    expect(sameDay.json<{ backups: { name: string }[] }>().backups.map((b) => b.name)).toEqual(['nightly']);
    expect(sameDay.json()).toMatchObject({
      query: { dateFrom: `${day}T00:00:00.000Z`, dateTo: `${day}T23:59:59.999Z` },
    });
    // a later time on the same day is not after a date-only --to; a later day is
    expect((await run(['query', '--from', '2024-12-17T18:00:00Z', '--to', '2024-12-17'])).code).toBe(0);
    const inverted = await run(['query', '--from', '2024-12-18', '--to', '2024-12-17']);
    expect(inverted.code).toBe(2);
    expect(inverted.stderr).toContain('--from (2024-12-18T00:00:00.000Z) is after --to (2024-12-17T23:59:59.999Z)');
  });

  it('prints catalog statistics', async () => {
    const r = await run(['stats', '--json']);
    expect(r.code).toBe(0);
    expect(r.json()).toMatchObject({ totalBackups: 2, byStatus: { Completed: 2 }, byStorageProfile: { local: 2 } });
    expect((await run(['stats'])).stdout).toMatch(/backups:\s+2/);
  });

  it('lists discovered entities with record counts', async () => {
    const r = await run(['entities', '--json']);
    expect(r.code).toBe(0);
    const rows = r.json<{ entities: { name: string; totalRecords: number; provider: string }[] }>().entities;
    expect(rows.map((e) => [e.name, e.provider, e.totalRecords])).toEqual([
      ['CliCustomer', 'sqlite', 40],
      ['CliNote', 'json', 10],
      ['CliOrder', 'sqlite', 120],
    ]);
  });

  it('restores with --replace --yes, bringing back deleted records', async () => {
    await withAppRuntime(async (rt) => {
      await CliOrder.withRuntime(rt).removeAll();
      await CliNote.withRuntime(rt).remove('n1');
    });
    const dry = await run(['restore', 'nightly', '--dry-run', '--json']);
    expect(dry.code, dry.stdout).toBe(0);
    expect(dry.json()).toMatchObject({ dryRun: true });
    // A dry run into a database that does not exist yet creates neither the file nor its folder.
    const elsewhere = await run([
      'restore',
      'nightly',
      '--dry-run',
      '--json',
      '--target-source',
      'sqlite:./dry/x.sqlite',
    ]);
    expect(elsewhere.code, elsewhere.stdout + elsewhere.stderr).toBe(0);
    expect(elsewhere.json()).toMatchObject({ dryRun: true, totalRecords: 170 });
    expect(existsSync(join(dir, 'dry')), 'nothing written').toBe(false);
    const real = await run(['restore', 'nightly', '--json', '--target-source', 'sqlite:./dry/x.sqlite']);
    expect(real.code, real.stdout + real.stderr).toBe(0);
    expect(existsSync(join(dir, 'dry', 'x.sqlite')), 'the same restore, not dry, writes there').toBe(true);
    rmSync(join(dir, 'dry'), { recursive: true, force: true });
    const r = await run(['restore', 'nightly', '--replace', '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const report = r.json<{ totalRecords: number; entities: { entityType: string; inserted: number }[] }>();
    expect(report.totalRecords).toBe(170);
    await withAppRuntime(async (rt) => {
      expect(await CliOrder.withRuntime(rt).count()).toBe(120);
      expect(await CliNote.withRuntime(rt).count()).toBe(10);
    });
  });

  it('restores one entity into another set, by id, with options', async () => {
    const r = await run([
      'restore',
      '--backup-id',
      nightly.id,
      '--entity',
      'CliNote',
      '--target-set',
      'staging',
      '--mode',
      'insert',
      '--no-bulk',
      '--lenient',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/CliNote\s+root -> staging\s+json \(cliJson\)\s+Restored\s+10/);
  });

  it('refuses --replace without --yes when not on a terminal, and asks on a terminal', async () => {
    const refused = await run(['restore', 'nightly', '--replace']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--yes');
    const declined = await run(['restore', 'nightly', '--replace'], { isTTY: true, confirm: async () => false });
    expect(declined.code).toBe(1);
    expect(declined.stderr).toContain('NOT_CONFIRMED');
    let asked = '';
    const accepted = await run(['restore', 'nightly', '--replace', '--entity', 'CliNote'], {
      isTTY: true,
      confirm: async (q) => {
        asked = q;
        return true;
      },
    });
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(asked).toContain('delete the existing records');
  });

  it('deletes a backup with a receipt; requires --yes off a terminal', async () => {
    expect((await run(['delete', ordersOnly.id])).code).toBe(2);
    const r = await run(['delete', ordersOnly.id, '--yes', '--json']);
    expect(r.code, r.stdout).toBe(0);
    const receipt = r.json<{ id: string; deletedKeys: string[]; freedBytes: number }>();
    expect(receipt.id).toBe(ordersOnly.id);
    expect(receipt.deletedKeys).toHaveLength(2);
    expect(receipt.freedBytes).toBeGreaterThan(0);
    expect((await run(['list', '--json'])).json<{ totalCount: number }>().totalCount).toBe(1);
  });
});

describe('koan-backup: errors and exit codes', () => {
  it('exits 2 with a helpful message on usage errors', async () => {
    const cases: [string[], RegExp][] = [
      [['backup', '--bogus'], /Unknown option --bogus/],
      [['lsit'], /Did you mean `koan-backup list`/],
      [['backup', 'bad name!'], /Invalid backup name/],
      [['backup', 'x', '--batch-size', '0'], /--batch-size must be an integer from 1 to 100000/],
      [['backup', 'x', '--batch-bytes', 'lots'], /--batch-bytes must be a size from 1 byte to 1GiB/],
      [['restore', 'nightly', '--batch-bytes', '2GiB'], /--batch-bytes must be a size from 1 byte to 1GiB/],
      [['backup', 'x', '--level', 'max'], /--level must be an integer/],
      [['backup', 'x', '--all', '--entity', 'CliNote'], /--all/],
      [['query', '--min-size', '10XB'], /--min-size must be a size/],
      [['query', '--from', 'yesterday'], /--from must be an ISO date/],
      [['query', '--status', 'Done'], /--status must be one of/],
      [['query', '--asc', '--desc'], /either --asc or --desc/],
      [['restore'], /Name the backup to restore/],
      [['restore', 'nightly', '--mode', 'merge'], /Invalid value for argument/],
      [['restore', 'nightly', '--target-set', 'bad set'], /Invalid set name/],
      [
        ['restore', 'nightly', '--set', 'nope', '--dry-run'],
        /Invalid option sets: \["nope"\]\. Expected sets the selected entities have/,
      ],
      [['restore', 'nightly', '--target-source', 'nowhere'], /not a configured source/],
      [['list', 'extra'], /Too many arguments/],
      [['backup', 'x', '--source', 'ftp://host/db'], /Unsupported source scheme/],
      [[], /No command given/],
    ];
    for (const [argv, message] of cases) {
      const r = await run(argv);
      expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, argv.join(' ')).toMatch(message);
      expect(r.stdout, argv.join(' ')).toBe('');
    }
  });

  it('exits 4 when a backup, entity or source file does not exist', async () => {
    for (const argv of [
      ['restore', 'no-such-backup'],
      ['inspect', 'no-such-backup'],
      ['validate', '01900000-0000-7000-8000-000000000000'],
      ['delete', 'nope', '--yes'],
    ]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(4);
      expect(r.stderr).toContain('BACKUP_NOT_FOUND');
      expect(r.stderr).toContain('koan-backup list');
    }
    expect((await run(['backup', 'x', '--source', join(dir, 'missing.sqlite')])).code).toBe(4);
  });

  it('prints errors as one JSON document with --json', async () => {
    const r = await run(['restore', 'no-such-backup', '--json']);
    expect(r.code).toBe(4);
    expect(r.json()).toMatchObject({ error: { code: 'BACKUP_NOT_FOUND', exitCode: 4 } });
    expect(r.stderr).toBe('');
  });

  it('exits 3 when the archive is corrupted (one flipped byte)', async () => {
    const made = await run(['backup', 'to-corrupt', '--json']);
    expect(made.code).toBe(0);
    const sidecar = made.json<Sidecar>();
    const file = join(dir, 'backups', sidecar.archive.key);
    const bytes = readFileSync(file);
    bytes[120] = bytes[120]! ^ 0xff; // inside the first entry's data
    writeFileSync(file, bytes);
    const v = await run(['validate', sidecar.id]);
    expect(v.code).toBe(3);
    expect(v.stdout).toMatch(/^INVALID: to-corrupt/);
    expect(v.stdout).toMatch(/^Issues \(\d+\):$/m);
    const restore = await run(['restore', sidecar.id]);
    expect(restore.code, restore.stderr).toBe(3);
    expect(restore.stderr).toMatch(/VALIDATION_FAILED|ARCHIVE_CORRUPT/);
    expect((await run(['delete', sidecar.id, '--yes'])).code).toBe(0);
  });

  it('has --help with a description and an example for every command', async () => {
    const top = await run(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('EXIT CODES');
    for (const command of [
      'backup',
      'restore',
      'list',
      'inspect',
      'validate',
      'query',
      'stats',
      'delete',
      'entities',
      'demo',
      'init',
    ]) {
      const r = await run([command, '--help']);
      expect(r.code, command).toBe(0);
      expect(r.stdout, command).toContain(`koan-backup ${command}`);
      expect(r.stdout, command).toMatch(/EXAMPLES\n\n {2}\S/);
      expect(r.stdout, command).toMatch(new RegExp(`^ {2}(koan-backup ${command}|npm run demo)`, 'm'));
      expect(r.stdout, command).not.toContain('\u001b[');
    }
    const query = (await run(['query', '--help'])).stdout;
    for (const flag of [
      '--tag',
      '--entity',
      '--from',
      '--to',
      '--profile',
      '--status',
      '--health',
      '--search',
      '--min-size',
      '--max-size',
      '--sort',
      '--asc',
      '--desc',
      '--skip',
      '--take',
    ])
      expect(query).toContain(flag);
  });
});

describe('koan-backup: typos and impossible values are refused, naming the flag', () => {
  it('restore refuses an --entity or --exclude-entity the backup does not hold (exit 4), and restores nothing', async () => {
    await withAppRuntime((rt) => CliNote.withRuntime(rt).remove('n1'));
    try {
      const typo = await run(['restore', 'nightly', '--entity', 'CliOrdr', '--replace', '--yes']);
      expect(typo.code, typo.stdout + typo.stderr).toBe(4);
      expect(typo.stdout).toBe('');
      expect(typo.stderr).toMatch(
        /Error \[ENTITY_NOT_FOUND\]: .*no entity named CliOrdr \(--entity\); nothing was restored\. It holds: CliCustomer, CliNote, CliOrder\./,
      );
      expect(typo.stderr).toMatch(/^Hint: See `koan-backup inspect /m);
      // An excluded typo would restore (and, with --replace, overwrite) the entity the caller meant to skip.
      const excluded = await run([
        'restore',
        'nightly',
        '--exclude-entity',
        'CliNotes',
        '--replace',
        '--yes',
        '--json',
      ]);
      expect(excluded.code).toBe(4);
      expect(excluded.json()).toMatchObject({
        error: {
          code: 'ENTITY_NOT_FOUND',
          exitCode: 4,
          details: { missingExcluded: ['CliNotes'], archived: ['CliCustomer', 'CliNote', 'CliOrder'] },
        },
      });
      await withAppRuntime(async (rt) => expect(await CliNote.withRuntime(rt).count()).toBe(9));
      // Names are case-insensitive, as in the filter itself.
      const ok = await run(['restore', 'nightly', '--entity', 'clinote', '--exclude-entity', 'cliorder', '--json']);
      expect(ok.code, ok.stdout).toBe(0);
      expect(ok.json<{ totalRecords: number }>().totalRecords).toBe(10);
    } finally {
      await withAppRuntime((rt) => CliNote.withRuntime(rt).upsert({ id: 'n1', text: 'note 1', pinned: false }));
    }
  });

  it('refuses impossible dates instead of rolling them over', async () => {
    for (const [value, problem] of [
      ['2024-02-30', 'February 2024 has 29 days'],
      ['2024-02-31T10:00:00Z', 'February 2024 has 29 days'],
      ['2023-02-29', 'February 2023 has 28 days'],
      ['2024-13-01', 'there is no month 13'],
      ['2024-12-17T24:30:00Z', '24:30:00 is not a time of day'],
    ]) {
      const r = await run(['query', '--from', value!]);
      expect(r.code, value).toBe(2);
      expect(r.stderr, value).toContain(`--from must be an ISO date`);
      expect(r.stderr, value).toContain(`got "${value}" (${problem})`);
      expect(r.stderr, value).toMatch(/^Hint: For example --from 2024-12-17/m);
    }
    const json = await run(['query', '--to', '2024-02-30', '--json']);
    expect(json.json()).toMatchObject({ error: { code: 'USAGE', exitCode: 2 } });
    expect(json.json<{ error: { message: string } }>().error.message).toContain('--to');
    const leap = await run(['query', '--from', '2024-02-29', '--to', '2024-02-29T23:59:59.999+01:00', '--json']);
    expect(leap.code, leap.stdout).toBe(0);
    expect(leap.json()).toMatchObject({
      query: { dateFrom: '2024-02-29T00:00:00.000Z', dateTo: '2024-02-29T22:59:59.999Z' },
    });
  });

  it('reports bad enum values as USAGE errors in plain text', async () => {
    for (const argv of [
      ['query', '--sort', 'foo'],
      ['restore', 'nightly', '--mode', 'bad'],
    ]) {
      const json = await run([...argv, '--json']);
      expect(json.code).toBe(2);
      expect(json.json()).toMatchObject({ error: { code: 'USAGE', exitCode: 2 } });
      expect(json.stdout).not.toContain('\\u001b');
      const human = await run(argv);
      expect(human.stderr).toMatch(/^Error \[USAGE\]: Invalid value for argument: --\w+ \(\w+\)/);
      expect(human.stderr).toMatch(new RegExp(`^Hint: See \`koan-backup ${argv[0]} --help\``, 'm'));
      expect(human.stderr).not.toContain('\u001b');
    }
  });

  it('gives every usage error a Hint: line', async () => {
    for (const [argv, hint] of [
      [['backup', 'x', '--batch-size', '0'], /^Hint: Records read per query, e\.g\. --batch-size 1000/m],
      [['restore', 'nightly', '--batch-size', 'lots'], /^Hint: Records written per batch/m],
      [['backup', 'x', '--batch-bytes', '0'], /^Hint: A batch closes at --batch-size records or at this many bytes/m],
      [['backup', 'x', '--level', 'max'], /^Hint: Deflate level: 1 is fastest, 9 smallest/m],
      [['query', '--status', 'Done'], /^Hint: Repeat --status or give a comma list/m],
      [['query', '--health', 'Fine'], /^Hint: Repeat --health/m],
      [['query', '--from', 'yesterday'], /^Hint: For example --from 2024-12-17/m],
      [['query', '--min-size', '10XB'], /^Hint: A number of bytes/m],
      [['query', '--take', 'many'], /^Hint: At most this many matches, e\.g\. --take 20; --take 0 only counts them\./m],
      [['cleanup', '--older-than', '1y'], /^Hint: Only leftovers older than this are removed/m],
      [['prune', '--dry-run'], /^Hint: For example: koan-backup prune --dry-run --keep-daily 7/m],
      [['query', '--asc', '--desc'], /^Hint: See `koan-backup query --help`/m],
    ] as const) {
      const r = await run([...argv]);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr, argv.join(' ')).toMatch(hint);
    }
  });

  it('backup refuses a selection flag that matches nothing (exit 2), naming the flag and the known values', async () => {
    const entity = await run(['backup', 'x', '--entity', 'NoSuchEntity']);
    expect(entity.code).toBe(2);
    expect(entity.stderr).toContain(
      'Error [INVALID_OPTION]: --entity NoSuchEntity: no discovered entity or table has that name; nothing was backed up. Known: CliCustomer, CliNote, CliOrder.',
    );
    expect(entity.stderr).toMatch(/^Hint: `koan-backup entities` lists them with their tables and sources\./m);
    const provider = await run(['backup', 'x', '--include-provider', 'nope', '--json']);
    expect(provider.code).toBe(2);
    expect(provider.json()).toMatchObject({
      error: {
        code: 'INVALID_OPTION',
        exitCode: 2,
        details: { option: 'includeProviders', known: ['json', 'sqlite'] },
      },
    });
    // A stale exclusion would hide that what it meant to leave out is backed up after all.
    const stale = await run(['backup', 'x', '--exclude-entity', 'CliNotes']);
    expect(stale.code).toBe(2);
    expect(stale.stderr).toContain('--exclude-entity CliNotes: no discovered entity or table');
    expect(
      (await run(['list', '--json'])).json<{ backups: { name: string }[] }>().backups.map((b) => b.name),
    ).not.toContain('x');
  });

  it('backup says which filters left nothing, and lists what was discovered', async () => {
    const r = await run(['backup', 'x', '--entity', 'CliNote', '--exclude-provider', 'json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'Error [NOTHING_TO_BACK_UP]: Nothing to back up: no entity matches the filters (--entity CliNote --exclude-provider json).',
    );
    expect(r.stderr).toMatch(/^Hint: Discovered: CliCustomer \(sqlite\), CliNote \(json\), CliOrder \(sqlite\)\./m);
    expect(r.stderr).not.toContain('--import');
    const json = await run(['backup', 'x', '--exclude-provider', 'sqlite,json', '--json']);
    expect(json.json()).toMatchObject({
      error: {
        code: 'NOTHING_TO_BACK_UP',
        details: { discovered: expect.arrayContaining([{ name: 'CliNote', provider: 'json', source: 'cliJson' }]) },
      },
    });
  });

  it('backup --source json:<dir> says JSON sources cannot be introspected', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'koan-cli-json-'));
    try {
      const r = await run(['backup', 'x', '--source', `json:${empty}`]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('NOTHING_TO_BACK_UP');
      expect(r.stderr).toMatch(/^Hint: Introspection is not available for JSON-file sources/m);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('refuses a --cwd that does not exist, for every command, and never creates it', async () => {
    for (const command of [
      ['list'],
      ['stats'],
      ['query'],
      ['backup', 'x'],
      ['entities'],
      ['cleanup', '--dry-run'],
      ['demo'],
    ]) {
      const r = await run([...command, '--cwd', 'no-such-app', '--json']);
      expect(r.code, command[0]).toBe(2);
      expect(r.json(), command[0]).toMatchObject({ error: { code: 'USAGE', exitCode: 2 } });
      expect(r.json<{ error: { message: string } }>().error.message, command[0]).toContain('--cwd no-such-app');
    }
    expect(existsSync(join(dir, 'no-such-app'))).toBe(false);
    const human = await run(['stats', '--cwd', join(dir, 'koan.config.json')]);
    expect(human.code).toBe(2);
    expect(human.stderr).toMatch(/--cwd .*is a file, not a directory/);
    expect(human.stderr).toMatch(/^Hint: /m);
  });

  it('demo --dir naming a file is a usage error that names --dir', async () => {
    const file = join(dir, 'not-a-dir.txt');
    writeFileSync(file, 'keep me');
    for (const target of [file, join(file, 'sub')]) {
      const r = await run(['demo', '--dir', target]);
      expect(r.code, target).toBe(2);
      expect(r.stderr, target).toMatch(/^Error \[USAGE\]: --dir /);
      expect(r.stderr, target).toMatch(/^Hint: Pass --dir/m);
    }
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });

  it('query --json always has skip and take (null when unlimited)', async () => {
    const r = await run(['query', '--json']);
    expect(r.json()).toMatchObject({ skip: 0, take: null });
    expect((await run(['query', '--take', '1', '--json'])).json()).toMatchObject({ skip: 0, take: 1 });
  });
});

describe('koan-backup: config, progress, sources and demo', () => {
  it('applies Koan__ env overrides and --config', async () => {
    const other = await run(['list', '--json'], {
      env: { Koan__Storage__Profiles__local__Settings__Root: './elsewhere' },
    });
    expect(other.json<{ totalCount: number }>().totalCount).toBe(0);
    const cwd = mkdtempSync(join(tmpdir(), 'koan-cli-cwd-'));
    try {
      const viaConfig = await run(['list', '--json', '--cwd', dir, '--config', join(dir, 'koan.config.json')], { cwd });
      expect(viaConfig.json<{ totalCount: number }>().totalCount).toBe(1);
      const missing = await run(['list', '--config', join(cwd, 'nope.json')], { cwd });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('CONFIG_NOT_FOUND');
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('draws progress on stderr on a terminal only', async () => {
    const tty = await run(['backup', 'with-progress'], { isTTY: true });
    expect(tty.code).toBe(0);
    expect(tty.stderr).toContain('\r\u001b[2K');
    expect(tty.stderr).toContain('backup with-progress');
    const plain = await run(['backup', 'without-progress']);
    expect(plain.stderr).toBe('');
    const lines = await run(['backup', 'progress-lines', '--progress', '--json']);
    expect(lines.stderr).toMatch(/progress-lines: CliOrder 120 records/);
    expect(() => lines.json()).not.toThrow();
  });

  it('backs up an existing SQLite database with no code (--source) and restores it elsewhere (--target-source)', async () => {
    const legacy = join(dir, 'legacy.db');
    const db = new Database(legacy);
    db.exec('CREATE TABLE legacy_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, added TEXT)');
    const insert = db.prepare('INSERT INTO legacy_items (id, name, price, added) VALUES (?, ?, ?, ?)');
    for (let i = 1; i <= 50; i++) insert.run(i, `item ${i}`, i * 1.25, i % 2 ? null : '2024-01-01');
    db.close();
    const listed = await run(['entities', '--source', `sqlite:${legacy}`, '--json']);
    expect(listed.json<{ entities: { name: string; totalRecords: number }[] }>().entities).toEqual([
      expect.objectContaining({ name: 'legacy_items', totalRecords: 50 }),
    ]);
    const b = await run(['backup', 'legacy', '--source', legacy, '--json']);
    expect(b.code, b.stdout + b.stderr).toBe(0);
    expect(b.json<Sidecar>().entities).toEqual([
      expect.objectContaining({ entityType: 'legacy_items', itemCount: 50 }),
    ]);
    // Its next step and the restore without a target both point at --target-source (this app declares no such entity).
    const human = await run(['backup', 'legacy', '--source', legacy]);
    expect(human.stdout).toContain('koan-backup restore legacy --target-source <url> --dry-run');
    const untargeted = await run(['restore', 'legacy', '--dry-run']);
    expect(untargeted.code).toBe(3);
    expect(untargeted.stderr).toMatch(/^Hint: This application declares no legacy_items: .*--target-source/m);
    const target = join(dir, 'restored-legacy.db');
    const r = await run(['restore', 'legacy', '--target-source', `sqlite:${target}`, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json<{ totalRecords: number }>().totalRecords).toBe(50);
    const check = new Database(target, { readonly: true });
    try {
      expect(check.prepare('SELECT COUNT(*) AS n, SUM(price) AS total FROM legacy_items').get()).toEqual({
        n: 50,
        total: 1593.75,
      });
    } finally {
      check.close();
    }
  });

  it('runs the demo end to end in a scratch directory and exits 0', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'koan-cli-demo-'));
    try {
      const r = await run(['demo'], { cwd });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('OK: every record restored identically');
      expect(r.stdout).toMatch(/Customer\s+sqlite\s+500\s+500\s+500\s+0\s+0\s+0/);
      expect(readdirSync(join(cwd, 'demo-output')).sort()).toEqual(
        expect.arrayContaining([
          'app.sqlite',
          'backups',
          'json',
          'json-restored',
          'koan.config.json',
          'restored.sqlite',
        ]),
      );
      // A second run wipes and redoes it; the catalog it leaves behind works with --cwd.
      expect((await run(['demo', '--json'], { cwd })).json()).toMatchObject({ ok: true });
      const list = await run(['list', '--cwd', 'demo-output', '--json'], { cwd });
      expect(list.json<{ totalCount: number }>().totalCount).toBe(1);
      // It never wipes a directory that is not its own.
      writeFileSync(join(cwd, 'precious.txt'), 'keep me');
      const refused = await run(['demo', '--dir', '.'], { cwd });
      expect(refused.code).toBe(2);
      expect(statSync(join(cwd, 'precious.txt')).isFile()).toBe(true);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
