import { resolve } from 'node:path';
import { KoanError } from '@koan/data';
import {
  type BackupResult,
  backupAllEntities,
  type GlobalBackupOptions,
  shortfallOf,
  underlyingError,
} from '@koan/data-backup';
import { assertBackupName } from '@koan/data-backup/catalog';
import { BATCH_SIZE, COMPRESSION_LEVEL, MAX_CONCURRENCY } from '@koan/data-backup/schemas';
import {
  batchBytesOption,
  batchSizeOption,
  entityArgs,
  globalArgs,
  intOption,
  opt,
  optionalList,
  progressArgs,
} from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { importEntityModules, withContext } from '../_context.js';
import { CLIError, ExitCode, exitCodeForCode, usageError } from '../_errors.js';
import { formatDuration } from '../_format.js';
import { ProgressDisplay } from '../_progress.js';
import { entityTable, manifestSummary, omittedSummary } from '../_render.js';
import { withFlagNames } from '../_selection.js';
import { parseSourceUrl, redactUrl } from '../_source-url.js';

export default defineCliCommand({
  meta: { name: 'backup', description: 'Back up every entity (or some) into one archive in a storage profile' },
  args: {
    name: {
      type: 'positional',
      required: false,
      default: 'backup',
      description: 'Backup name: letters, digits, . _ - (the catalog groups backups by name)',
    },
    ...globalArgs,
    ...entityArgs,
    all: { type: 'boolean', description: 'Back up every discovered entity (the default without --entity)' },
    entity: {
      type: 'string',
      description:
        'Only this entity or table (repeatable or comma list, any case); the rest is listed in the manifest as not selected',
      valueHint: 'Name',
    },
    'include-entity': { type: 'string', description: 'Same as --entity', valueHint: 'Name' },
    'exclude-entity': {
      type: 'string',
      description:
        'Leave this entity or table out (repeatable or comma list, any case; also Koan.Backup.ExcludeEntities): the manifest lists it as omitted. A table that cannot be backed up must be excluded',
      valueHint: 'Name',
    },
    'include-provider': {
      type: 'string',
      description: 'Only entities of these providers: sqlite, postgres, mysql, mariadb, redis, json...',
      valueHint: 'provider',
    },
    'exclude-provider': {
      type: 'string',
      description: 'Leave out the entities of these providers (listed in the manifest as omitted)',
      valueHint: 'provider',
    },
    source: {
      type: 'string',
      description:
        'Back up an existing database with no code (its tables are introspected): postgres://..., mysql://..., mariadb://..., sqlite:<path> or a .sqlite/.db file',
      valueHint: 'url',
    },
    introspect: {
      type: 'boolean',
      description:
        'Also back up tables of the configured sources that no code declares (every table, or the backup fails naming those it cannot back up)',
    },
    description: { type: 'string', description: 'Free text stored in the manifest' },
    tag: { type: 'string', description: 'Tag (repeatable or comma list); find backups by tag with `query --tag`' },
    output: {
      type: 'string',
      description:
        'Write the archive to this file (or - for standard output) instead of a storage profile, like pg_dump -f; nothing goes into the catalog (the archive holds its manifest: restore, validate and adopt read it)',
      valueHint: 'file|-',
    },
    profile: {
      type: 'string',
      description: 'Storage profile to write to (default: Koan.Backup.DefaultStorageProfile, else the default profile)',
    },
    'batch-size': {
      type: 'string',
      description: `Records read per batch, ${BATCH_SIZE.min}-${BATCH_SIZE.max} (default: Koan.Backup.DefaultBatchSize, 1000)`,
    },
    'batch-bytes': {
      type: 'string',
      description:
        'Bytes per batch, such as 1MiB or 512KiB: a batch closes at --batch-size records or at this size, whichever comes first, so wide rows stay bounded in memory (default: Koan.Backup.DefaultBatchBytes, 1MiB)',
      valueHint: 'size',
    },
    compress: {
      type: 'boolean',
      default: true,
      description: 'Deflate the entries',
      negativeDescription: 'Store entries uncompressed (faster, larger)',
    },
    level: {
      type: 'string',
      description: `Deflate level 1 (fastest) to ${COMPRESSION_LEVEL.max} (smallest) (default: Koan.Backup.CompressionLevel, 1)`,
    },
    concurrency: {
      type: 'string',
      description: `Sources read at the same time, ${MAX_CONCURRENCY.min}-${MAX_CONCURRENCY.max} (default 1)`,
    },
    'continue-on-error': {
      type: 'boolean',
      default: true,
      description: 'Record a failing entity and keep going (the backup is PartiallyCompleted)',
      negativeDescription: 'Fail the whole backup on the first failing entity; nothing is published',
    },
    ...progressArgs,
  },
  examples: [
    '# Back up every entity the app defines (a whole-app backup named "nightly")',
    'koan-backup backup nightly --import ./dist/entities.js --tag nightly',
    '# Only two entities, maximum compression, into the "s3" profile',
    'koan-backup backup orders --entity Order,Customer --level 9 --profile s3',
    '# Back up an existing database with no code (its tables are introspected)',
    'koan-backup backup legacy-shop --source postgres://user:pass@localhost:5432/shop',
    '# ...leaving one table out on purpose (the manifest records it as omitted; `inspect` shows it)',
    'koan-backup backup legacy-shop --source postgres://user:pass@localhost:5432/shop --exclude-entity audit.events',
    'koan-backup backup local-copy --source ./data/app.sqlite --json',
  ],
  async run(args, session, rawArgs) {
    const name = args.name ?? 'backup';
    try {
      assertBackupName(name);
    } catch (e) {
      throw usageError((e as Error).message);
    }
    const only = [...(optionalList(rawArgs, 'entity') ?? []), ...(optionalList(rawArgs, 'include-entity') ?? [])];
    if (args.all && only.length)
      throw usageError('--all backs up every entity; it cannot be combined with --entity/--include-entity.');
    const output = args.output;
    if (output === '-' && !session.io.binaryOut)
      throw usageError('--output - writes the archive to standard output, which is not available here.');
    if (output === '-' && (session.io.binaryOut as { isTTY?: boolean }).isTTY)
      throw usageError(
        '--output - would write a ZIP archive onto the terminal.',
        'Redirect it: koan-backup backup nightly --output - > nightly.zip (or pipe it: | aws s3 cp - s3://bucket/nightly.zip).',
      );
    if (output === '-' && args.profile) throw usageError('--output and --profile name two destinations: pick one.');
    if (output !== undefined && output !== '-' && !output.endsWith('.zip'))
      throw usageError(`--output ${output}: name a .zip file (or - for standard output).`);
    const options: GlobalBackupOptions & { introspect: boolean } = {
      ...(output === '-' && session.io.binaryOut ? { output: { stream: session.io.binaryOut } } : {}),
      ...(output !== undefined && output !== '-' ? { output: { file: resolve(session.cwd, output) } } : {}),
      ...(args.description !== undefined ? { description: args.description } : {}),
      tags: optionalList(rawArgs, 'tag') ?? [],
      ...(args.profile ? { storageProfile: args.profile } : {}),
      ...opt('batchSize', batchSizeOption(args['batch-size'], 'read per query')),
      ...opt('batchBytes', batchBytesOption(args['batch-bytes'])),
      compressData: args.compress !== false,
      ...opt(
        'compressionLevel',
        intOption(
          args.level,
          'level',
          1, // the library's level 0 (store) is spelled --no-compress
          COMPRESSION_LEVEL.max,
          `Deflate level: 1 is fastest, ${COMPRESSION_LEVEL.max} smallest (e.g. --level 6); --no-compress stores entries uncompressed.`,
        ),
      ),
      ...opt(
        'maxConcurrency',
        intOption(
          args.concurrency,
          'concurrency',
          MAX_CONCURRENCY.min,
          MAX_CONCURRENCY.max,
          'Sources read at the same time, e.g. --concurrency 2.',
        ),
      ),
      continueOnError: args['continue-on-error'] !== false,
      ...(only.length ? { includeEntityTypes: only } : {}),
      ...opt('excludeEntityTypes', optionalList(rawArgs, 'exclude-entity')),
      ...opt('includeProviders', optionalList(rawArgs, 'include-provider')),
      ...opt('excludeProviders', optionalList(rawArgs, 'exclude-provider')),
      introspect: Boolean(args.introspect || args.source),
      ...(session.io.signal ? { signal: session.io.signal } : {}),
    };
    const source = args.source ? parseSourceUrl(args.source, session.cwd, { mustExist: true }) : undefined;
    if (!source) await importEntityModules(session, args, rawArgs);
    const where = args.source ? redactUrl(args.source) : undefined;
    return withContext(
      session,
      args,
      async (context) => {
        const progress = new ProgressDisplay(session, { progress: args.progress });
        const listener = progress.listener;
        let result: BackupResult;
        try {
          // The library plans the backup (what it takes, what it leaves out and why) before reading anything.
          result = await backupAllEntities(context, name, {
            ...options,
            ...(listener ? { onProgress: listener } : {}),
          });
        } catch (e) {
          throw backupError(e, { where, provider: source?.provider, filters: filterFlags(options) });
        } finally {
          progress.clear();
        }
        const partial = result.status !== 'Completed';
        // The archive went to standard output: the summary goes to stderr.
        if (output === '-') session.io.stderr.write(`${JSON.stringify(result, null, 2)}\n`);
        else if (session.json) session.printJson(result);
        else {
          session.print(
            `Backup ${result.name} ${partial ? 'finished with failures' : 'completed'} in ${formatDuration(result.timings.totalMs)}${where ? ` from ${where}` : ''}`,
          );
          session.print();
          session.print(manifestSummary(result));
          session.print();
          session.print(entityTable(result.entities));
          session.print();
          if (result.omitted?.length) {
            session.print(omittedSummary(result.omitted, result.id));
            session.print();
          }
          // A backup of a database with no code restores with the archived schema, into a database named by URL.
          const restore = `koan-backup restore ${output ? output : result.name}${source ? ' --target-source <url>' : ''} --dry-run`;
          session.print(`Next: koan-backup validate ${result.id}   |   ${restore}`);
        }
        const shortfall = shortfallOf(result);
        if (shortfall) {
          session.note(
            `Warning: ${shortfall.message} Re-run with --no-continue-on-error to fail instead of publishing a partial backup.`,
          );
          return ExitCode.FAILURE;
        }
        return ExitCode.OK;
      },
      source ? { sources: { cli: source } } : {},
    );
  },
});

/** The selection flags given, as typed (for messages). */
function filterFlags(options: GlobalBackupOptions): string[] {
  return [
    ...(options.includeEntityTypes ?? []).map((e) => `--entity ${e}`),
    ...(options.excludeEntityTypes ?? []).map((e) => `--exclude-entity ${e}`),
    ...(options.includeProviders ?? []).map((p) => `--include-provider ${p}`),
    ...(options.excludeProviders ?? []).map((p) => `--exclude-provider ${p}`),
  ];
}

/** A failed backup, said in the CLI's terms: the flags typed, and what to do next. */
function backupError(
  e: unknown,
  context: { where: string | undefined; provider: string | undefined; filters: readonly string[] },
): unknown {
  const listCommand = `koan-backup entities${context.where ? ' --source <url>' : ''}`;
  const flagged = withFlagNames(e, listCommand);
  if (flagged !== e || !(e instanceof KoanError)) return flagged;
  if (e.code === 'NOTHING_TO_BACK_UP') {
    const discovered = (e.details.discovered ?? []) as { name: string; provider: string }[];
    if (!discovered.length)
      return new CLIError(
        `Nothing to back up: no entity was discovered in ${context.where ?? 'the configured sources'}.`,
        'NOTHING_TO_BACK_UP',
        { exitCode: ExitCode.USAGE, hint: nothingDiscoveredHint(context.provider, context.where), details: e.details },
      );
    return new CLIError(
      `Nothing to back up: no entity matches the filters (${context.filters.join(' ') || 'sets'}).`,
      'NOTHING_TO_BACK_UP',
      {
        exitCode: ExitCode.USAGE,
        details: e.details,
        hint: `Discovered: ${discovered.map((d) => `${d.name} (${d.provider})`).join(', ')}. Relax the filters; \`${listCommand}\` shows what is discovered.`,
      },
    );
  }
  // Keep the underlying code (SOURCE_UNAVAILABLE, ABORTED...) so the exit code and hint fit the cause.
  const inner = underlyingError(e);
  if (inner !== e)
    return new CLIError(e.message, inner.code, { exitCode: exitCodeForCode(inner.code), cause: e, details: e.details });
  return e;
}

/** Why `--source` (or the configured sources) gave no entity, and what to do instead. */
function nothingDiscoveredHint(provider: string | undefined, url: string | undefined): string {
  if (provider === 'redis' || provider === 'json')
    return `Introspection is not available for ${provider === 'redis' ? 'Redis' : 'JSON-file'} sources (there is no schema to read), so --source ${provider === 'redis' ? 'redis://...' : 'json:<dir>'} finds nothing to back up. Declare the entities with defineEntity, configure the source under Koan.Data.Sources in koan.config.json and pass --import <module>. As a restore target (--target-source) it needs no code.`;
  if (url)
    return `${url} holds no table (views and other objects that hold no data are not backed up). \`koan-backup entities --source <url>\` shows what is found.`;
  return 'Pass --import <module> with your defineEntity calls, --introspect to include tables no code declares, or --source <url> to back up a database directly. `koan-backup entities` shows what is discovered.';
}
