import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataRuntime, type Entity, encodeRecordLine, type SourceConfig } from '@koan/data';
import {
  BackupContext,
  BackupDiscoveryService,
  backupAllEntities,
  locateBackup,
  openArchive,
  type RestoreReport,
  restoreAllEntities,
} from '@koan/data-backup';
import { globalArgs, progressArgs } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { schemaReference } from '../_config-schema.js';
import { DEMO_ENTITIES, DEMO_JSON_SOURCE, DEMO_SQL_SOURCE, generateDemoData, Order } from '../_demo-app.js';
import { ExitCode, usageError } from '../_errors.js';
import { formatBytes, formatCount, formatDuration, renderTable } from '../_format.js';
import { ProgressDisplay } from '../_progress.js';
import {
  type ArchiveEntry,
  archiveEntries,
  archiveListing,
  entityTable,
  manifestSummary,
  restoreTable,
} from '../_render.js';

const MARKER = '.koan-demo';

interface Comparison {
  readonly entity: string;
  readonly provider: string;
  readonly source: number;
  readonly restored: number;
  readonly identical: number;
  readonly differing: number;
  readonly missing: number;
  readonly extra: number;
  readonly firstDifference?: string;
}

/** The demo's entity module as `--import` takes it (relative to the demo directory). */
function demoModule(dir: string): string {
  const file = fileURLToPath(new URL('../_demo-app.js', import.meta.url));
  const rel = relative(dir, file);
  return rel.startsWith('.') ? rel : `./${rel}`;
}

function sources(sqlite: string, json: string): Record<string, SourceConfig> {
  return {
    [DEMO_SQL_SOURCE]: { provider: 'sqlite', settings: { path: sqlite } },
    [DEMO_JSON_SOURCE]: { provider: 'json', settings: { directory: json } },
  };
}

/** Wipes the scratch directory, refusing to touch one that holds anything but an earlier demo's output. */
function prepareDir(dir: string, given: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory())
      throw usageError(
        `--dir ${given}: ${dir} is a file, not a directory; the demo will not replace it.`,
        'Pass --dir <new directory> (it is created), or the directory of an earlier demo run.',
      );
    const entries = readdirSync(dir);
    if (entries.length && !entries.includes(MARKER))
      throw usageError(
        `${dir} exists and is not an earlier demo's output; the demo will not wipe it.`,
        'Pass --dir <new directory>, or remove it yourself.',
      );
    rmSync(dir, { recursive: true, force: true });
  }
}

async function compareEntity(entity: Entity, from: DataRuntime, to: DataRuntime): Promise<Comparison> {
  const schema = entity.schema;
  const index = async (runtime: DataRuntime) => {
    const map = new Map<string, string>();
    for await (const batch of entity.withRuntime(runtime).stream({ batchSize: 2000 }))
      for (const record of batch)
        map.set(
          String(record[schema.key as keyof typeof record]),
          encodeRecordLine(schema, record as Record<string, unknown>, 'text'),
        );
    return map;
  };
  const a = await index(from);
  const b = await index(to);
  let identical = 0;
  let differing = 0;
  let missing = 0;
  let firstDifference: string | undefined;
  for (const [key, line] of a) {
    const other = b.get(key);
    if (other === undefined) {
      missing++;
      firstDifference ??= `${schema.name} ${key}: missing after restore`;
    } else if (other !== line) {
      differing++;
      firstDifference ??= `${schema.name} ${key}:\n    source   ${line}\n    restored ${other}`;
    } else identical++;
  }
  const extra = [...b.keys()].filter((k) => !a.has(k)).length;
  const provider = (await from.adapter(schema.source)).provider;
  return {
    entity: schema.name,
    provider,
    source: a.size,
    restored: b.size,
    identical,
    differing,
    missing,
    extra,
    ...(firstDifference ? { firstDifference } : {}),
  };
}

export default defineCliCommand({
  meta: {
    name: 'demo',
    description:
      'Seed a demo app (SQLite + JSON files), back it up, restore it into a fresh environment and compare every record',
  },
  args: {
    ...globalArgs,
    dir: {
      type: 'string',
      description: 'Scratch directory, wiped at start (only if it holds an earlier demo)',
      default: 'demo-output',
      valueHint: 'dir',
    },
    ...progressArgs,
  },
  examples: [
    '# From the repository root (builds first)',
    'npm run demo',
    'koan-backup demo --dir /tmp/koan-demo',
    'koan-backup demo --json | jq .comparison',
  ],
  async run(args, session) {
    const t0 = performance.now();
    const dir = resolve(session.cwd, args.cwd ?? '.', args.dir ?? 'demo-output');
    const show = (p: string) => relative(session.cwd, p) || '.';
    const given = args.dir ?? 'demo-output';
    prepareDir(dir, given);
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      // A file on the way (ENOTDIR, EEXIST), or no permission: name the flag, not just the errno.
      throw usageError(
        `--dir ${given}: cannot create ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`,
        'Pass --dir <directory> under a writable directory, with no file in its path.',
      );
    }
    await writeFile(
      join(dir, MARKER),
      'Written by `koan-backup demo`; the demo wipes this directory on its next run.\n',
    );
    // The config lets every other command point at the demo with --cwd.
    const config = {
      $schema: schemaReference(dir),
      Koan: {
        Data: {
          Sources: {
            [DEMO_SQL_SOURCE]: { Provider: 'sqlite', Settings: { Path: 'app.sqlite' } },
            [DEMO_JSON_SOURCE]: { Provider: 'json', Settings: { Directory: 'json' } },
          },
        },
        Storage: {
          DefaultProfile: 'local',
          Profiles: { local: { Provider: 'local', Settings: { Root: './backups' } } },
        },
        Backup: { CompressionLevel: 6 },
      },
    };
    await writeFile(join(dir, 'koan.config.json'), `${JSON.stringify(config, null, 2)}\n`);

    const source = await BackupContext.fromConfig({ cwd: dir, env: {} });
    const fresh = await BackupContext.fromConfig({
      cwd: dir,
      env: {},
      runtime: new DataRuntime({ cwd: dir, sources: sources('restored.sqlite', 'json-restored') }),
    });
    try {
      // 1. Seed
      const data = generateDemoData();
      const seedStart = performance.now();
      const [customers, orders, products] = DEMO_ENTITIES.map((e) => e.withRuntime(source.runtime)) as unknown as [
        (typeof DEMO_ENTITIES)[0],
        (typeof DEMO_ENTITIES)[1],
        (typeof DEMO_ENTITIES)[2],
      ];
      await customers.upsertMany(data.customers);
      for (let i = 0; i < data.orders.length; i += 1000) await orders.upsertMany(data.orders.slice(i, i + 1000));
      await products.upsertMany(data.products);
      const seeded = [
        {
          entity: 'Customer',
          provider: 'sqlite',
          where: show(join(dir, 'app.sqlite')),
          records: data.customers.length,
        },
        { entity: 'Order', provider: 'sqlite', where: show(join(dir, 'app.sqlite')), records: data.orders.length },
        { entity: 'Product', provider: 'json', where: show(join(dir, 'json')), records: data.products.length },
      ];
      const seedMs = performance.now() - seedStart;

      // 2. Back up everything
      const progress = new ProgressDisplay(session, { progress: args.progress });
      const listener = progress.listener;
      const backup = await backupAllEntities(source, 'demo', {
        description: 'koan-backup demo: Customer and Order in SQLite, Product in JSON files',
        tags: ['demo', 'sqlite', 'json'],
        ...(listener ? { onProgress: listener } : {}),
      });
      progress.clear();
      const archivePath = join(dir, 'backups', backup.archive!.key);

      // 3. Validate deeply, and list the archive
      const validation = await new BackupDiscoveryService(source).validateBackup(backup.id);
      const located = await locateBackup(source, backup.id);
      const reader = await openArchive(located);
      let entries: ArchiveEntry[];
      try {
        entries = archiveEntries(reader);
      } finally {
        await reader.close();
      }

      // 4. Restore into a fresh environment (new SQLite file, new JSON directory)
      const restore: RestoreReport = await restoreAllEntities(
        fresh,
        backup.id,
        listener ? { onProgress: listener } : {},
      );
      progress.clear();

      // 5. Compare every record, and the foreign key
      const comparison: Comparison[] = [];
      for (const entity of DEMO_ENTITIES)
        comparison.push(await compareEntity(entity as unknown as Entity, source.runtime, fresh.runtime));
      const restoredCustomers = new Set((await DEMO_ENTITIES[0].withRuntime(fresh.runtime).all()).map((c) => c.id));
      const orphans = (await Order.withRuntime(fresh.runtime).all()).filter(
        (o) => !restoredCustomers.has(o.customerId),
      ).length;
      const identical =
        comparison.every((c) => c.differing === 0 && c.missing === 0 && c.extra === 0 && c.source === c.restored) &&
        orphans === 0;
      const totalMs = performance.now() - t0;

      if (session.json) {
        session.printJson({
          ok: identical && validation.isValid,
          directory: dir,
          seeded,
          backup,
          archivePath,
          archiveEntries: entries,
          validation,
          restore,
          comparison,
          orphanOrders: orphans,
          durationMs: totalMs,
        });
      } else {
        const cli = 'koan-backup';
        const cwdFlag = `--cwd ${show(dir)}`;
        const lines = [
          `Koan backup demo in ${show(dir)}/`,
          '',
          `1. Seeded ${formatCount(data.customers.length + data.orders.length + data.products.length)} deterministic records in ${formatDuration(seedMs)}:`,
          renderTable(
            seeded,
            [
              { header: 'ENTITY', value: (s) => s.entity },
              { header: 'PROVIDER', value: (s) => s.provider },
              { header: 'WHERE', value: (s) => s.where },
              { header: 'RECORDS', value: (s) => formatCount(s.records), align: 'right' },
            ],
            '   ',
          ),
          '   Fields: uuid keys, exact decimals, datetimes with microseconds, JSON, booleans, nullable/optional, dates, doubles,',
          '   64-bit integers beyond 2^53; Order.customerId references Customer (restored parents first).',
          '',
          `2. Backed up everything into one archive: ${show(archivePath)}`,
          manifestSummary(backup, [], '   '),
          '',
          entityTable(backup.entities, '   '),
          '',
          `   Deep validation: ${validation.isValid ? 'valid' : 'INVALID'} (${validation.checkedEntries} entries, ${formatCount(validation.checkedLines)} records re-read and decoded)${validation.issues.map((i) => `\n   - ${i}`).join('')}`,
          '',
          `3. Archive contents (unzip -l ${show(archivePath)}):`,
          archiveListing(entries, '   '),
          '',
          `4. Restored into a fresh environment (${show(join(dir, 'restored.sqlite'))} + ${show(join(dir, 'json-restored'))}) in ${formatDuration(restore.durationMs)}:`,
          restoreTable(restore.entities, '   '),
          '',
          `5. Compared every record, source vs restored (field by field, in the archive encoding):`,
          renderTable(
            comparison,
            [
              { header: 'ENTITY', value: (c) => c.entity },
              { header: 'PROVIDER', value: (c) => c.provider },
              { header: 'SOURCE', value: (c) => formatCount(c.source), align: 'right' },
              { header: 'RESTORED', value: (c) => formatCount(c.restored), align: 'right' },
              { header: 'IDENTICAL', value: (c) => formatCount(c.identical), align: 'right' },
              { header: 'DIFFERENT', value: (c) => formatCount(c.differing), align: 'right' },
              { header: 'MISSING', value: (c) => formatCount(c.missing), align: 'right' },
              { header: 'EXTRA', value: (c) => formatCount(c.extra), align: 'right' },
            ],
            '   ',
          ),
          `   Orders whose customer is missing after restore: ${orphans}`,
          ...comparison.flatMap((c) => (c.firstDifference ? [`   First difference: ${c.firstDifference}`] : [])),
          '',
          identical && validation.isValid
            ? `OK: every record restored identically (${formatCount(restore.totalRecords)} records, ${formatBytes(backup.archive?.sizeBytes ?? 0)} archive) in ${formatDuration(totalMs)}.`
            : 'FAILED: the restored data differs from the source (see above).',
          '',
          `Next steps (${show(join(dir, 'koan.config.json'))} points the CLI at the demo; from the repo root, ${cli} = node packages/cli/dist/bin.js):`,
          `  ${cli} list ${cwdFlag}`,
          `  ${cli} inspect demo ${cwdFlag}`,
          `  ${cli} validate demo ${cwdFlag}`,
          `  ${cli} query ${cwdFlag} --tag demo --entity Order --min-size 10KB --sort size`,
          `  ${cli} stats ${cwdFlag}`,
          `  ${cli} entities ${cwdFlag} --import ${demoModule(dir)}`,
          `  ${cli} backup second ${cwdFlag} --import ${demoModule(dir)} --entity Product --tag manual`,
          `  ${cli} restore demo ${cwdFlag} --dry-run`,
          `  ${cli} restore demo ${cwdFlag} --entity Order --replace --yes`,
          `  ${cli} backup --help`,
        ];
        session.print(lines.join('\n'));
      }
      return identical && validation.isValid ? ExitCode.OK : ExitCode.FAILURE;
    } finally {
      await fresh.close();
      await source.close();
    }
  },
});
