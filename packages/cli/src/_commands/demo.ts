import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataRuntime, type Entity, type SourceConfig } from '@koan/data';
import { encodeRecordLine } from '@koan/data/adapter-kit';
import {
  BackupContext,
  BackupDiscoveryService,
  type BackupResult,
  backupAllEntities,
  type RestoreReport,
  restoreAllEntities,
} from '@koan/data-backup';
import { openArchive, type ValidationResult } from '@koan/data-backup/archive';
import { locateBackup } from '@koan/data-backup/catalog';
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
    const given = args.dir ?? 'demo-output';
    const dir = resolve(session.cwd, args.cwd ?? '.', given);
    const show = (p: string) => relative(session.cwd, p) || '.';
    await writeDemoDirectory(dir, given);
    const source = await BackupContext.fromConfig({ cwd: dir, env: {} });
    const fresh = await BackupContext.fromConfig({
      cwd: dir,
      env: {},
      runtime: new DataRuntime({ cwd: dir, sources: sources('restored.sqlite', 'json-restored') }),
    });
    try {
      const progress = new ProgressDisplay(session, { progress: args.progress });
      const seed = await seedDemo(source, dir, show);
      const backup = await backUpDemo(source, progress);
      const { validation, entries } = await validateAndList(source, backup.id);
      const restore = await restoreDemo(fresh, backup.id, progress);
      const { comparison, orphans } = await compareRestored(source, fresh);
      const outcome: DemoOutcome = {
        dir,
        seed,
        backup,
        archivePath: join(dir, 'backups', backup.archive!.key),
        entries,
        validation,
        restore,
        comparison,
        orphans,
        ok:
          comparison.every((c) => c.differing === 0 && c.missing === 0 && c.extra === 0 && c.source === c.restored) &&
          orphans === 0 &&
          validation.isValid,
        totalMs: performance.now() - t0,
      };
      if (session.json) session.printJson(demoDocument(outcome));
      else session.print(demoReport(outcome, show));
      return outcome.ok ? ExitCode.OK : ExitCode.FAILURE;
    } finally {
      await fresh.close();
      await source.close();
    }
  },
});

/** Everything one demo run found, for the JSON document and the text report. */
interface DemoOutcome {
  readonly dir: string;
  readonly seed: Seeded;
  readonly backup: BackupResult;
  readonly archivePath: string;
  readonly entries: readonly ArchiveEntry[];
  readonly validation: ValidationResult;
  readonly restore: RestoreReport;
  readonly comparison: readonly Comparison[];
  /** Restored orders whose customer is missing. */
  readonly orphans: number;
  /** Every record restored identically, no orphan, and the archive valid. */
  readonly ok: boolean;
  readonly totalMs: number;
}

interface Seeded {
  readonly entities: readonly { entity: string; provider: string; where: string; records: number }[];
  readonly records: number;
  readonly durationMs: number;
}

/**
 * Phase 0: the scratch directory (an earlier demo's is wiped), its marker, and a koan.config.json that lets every
 * other command point at the demo with --cwd.
 */
async function writeDemoDirectory(dir: string, given: string): Promise<void> {
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
  await writeFile(join(dir, MARKER), 'Written by `koan-backup demo`; the demo wipes this directory on its next run.\n');
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
}

/** Phase 1: the deterministic demo records, into SQLite (Customer, Order) and JSON files (Product). */
async function seedDemo(source: BackupContext, dir: string, show: (path: string) => string): Promise<Seeded> {
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
  const entities = [
    {
      entity: 'Customer',
      provider: 'sqlite',
      where: show(join(dir, 'app.sqlite')),
      records: data.customers.length,
    },
    { entity: 'Order', provider: 'sqlite', where: show(join(dir, 'app.sqlite')), records: data.orders.length },
    { entity: 'Product', provider: 'json', where: show(join(dir, 'json')), records: data.products.length },
  ];
  return {
    entities,
    records: data.customers.length + data.orders.length + data.products.length,
    durationMs: performance.now() - seedStart,
  };
}

/** Phase 2: back up everything into one archive. */
async function backUpDemo(source: BackupContext, progress: ProgressDisplay): Promise<BackupResult> {
  const listener = progress.listener;
  const backup = await backupAllEntities(source, 'demo', {
    description: 'koan-backup demo: Customer and Order in SQLite, Product in JSON files',
    tags: ['demo', 'sqlite', 'json'],
    ...(listener ? { onProgress: listener } : {}),
  });
  progress.clear();
  return backup;
}

/** Phase 3: validate the backup deeply, and list its archive. */
async function validateAndList(
  source: BackupContext,
  id: string,
): Promise<{ validation: ValidationResult; entries: ArchiveEntry[] }> {
  const validation = await new BackupDiscoveryService(source).validateBackup(id);
  const located = await locateBackup(source, id);
  const reader = await openArchive(located);
  try {
    return { validation, entries: archiveEntries(reader) };
  } finally {
    await reader.close();
  }
}

/** Phase 4: restore into a fresh environment (new SQLite file, new JSON directory). */
async function restoreDemo(fresh: BackupContext, id: string, progress: ProgressDisplay): Promise<RestoreReport> {
  const listener = progress.listener;
  const restore = await restoreAllEntities(fresh, id, listener ? { onProgress: listener } : {});
  progress.clear();
  return restore;
}

/** Phase 5: compare every record, source vs restored, and the foreign key of the restored orders. */
async function compareRestored(
  source: BackupContext,
  fresh: BackupContext,
): Promise<{ comparison: Comparison[]; orphans: number }> {
  const comparison: Comparison[] = [];
  for (const entity of DEMO_ENTITIES)
    comparison.push(await compareEntity(entity as unknown as Entity, source.runtime, fresh.runtime));
  const restoredCustomers = new Set((await DEMO_ENTITIES[0].withRuntime(fresh.runtime).all()).map((c) => c.id));
  const orphans = (await Order.withRuntime(fresh.runtime).all()).filter(
    (o) => !restoredCustomers.has(o.customerId),
  ).length;
  return { comparison, orphans };
}

/** The `--json` document. */
function demoDocument(o: DemoOutcome): Record<string, unknown> {
  return {
    ok: o.ok,
    directory: o.dir,
    seeded: o.seed.entities,
    backup: o.backup,
    archivePath: o.archivePath,
    archiveEntries: o.entries,
    validation: o.validation,
    restore: o.restore,
    comparison: o.comparison,
    orphanOrders: o.orphans,
    durationMs: o.totalMs,
  };
}

/** The text report: what each phase did, the verdict, and commands to try next on the demo's output. */
function demoReport(o: DemoOutcome, show: (path: string) => string): string {
  const { dir, backup, validation, restore, comparison } = o;
  const cli = 'koan-backup';
  const cwdFlag = `--cwd ${show(dir)}`;
  const lines = [
    `Koan backup demo in ${show(dir)}/`,
    '',
    `1. Seeded ${formatCount(o.seed.records)} deterministic records in ${formatDuration(o.seed.durationMs)}:`,
    renderTable(
      o.seed.entities,
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
    `2. Backed up everything into one archive: ${show(o.archivePath)}`,
    manifestSummary(backup, [], '   '),
    '',
    entityTable(backup.entities, '   '),
    '',
    `   Deep validation: ${validation.isValid ? 'valid' : 'INVALID'} (${validation.checkedEntries} entries, ${formatCount(validation.checkedLines)} records re-read and decoded)${validation.issues.map((i) => `\n   - ${i}`).join('')}`,
    '',
    `3. Archive contents (unzip -l ${show(o.archivePath)}):`,
    archiveListing(o.entries, '   '),
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
    `   Orders whose customer is missing after restore: ${o.orphans}`,
    ...comparison.flatMap((c) => (c.firstDifference ? [`   First difference: ${c.firstDifference}`] : [])),
    '',
    o.ok
      ? `OK: every record restored identically (${formatCount(restore.totalRecords)} records, ${formatBytes(backup.archive?.sizeBytes ?? 0)} archive) in ${formatDuration(o.totalMs)}.`
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
  return lines.join('\n');
}
