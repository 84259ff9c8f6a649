import { KoanError } from '@koan/data';
import {
  assertBackupName,
  type BackupTarget,
  type GlobalBackupOptions,
  runBackup,
  selectTargets,
} from '@koan/data-backup';
import { batchSizeOption, entityArgs, globalArgs, intOption, opt, optionalList, progressArgs } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { importEntityModules, withContext } from '../_context.js';
import { CLIError, ExitCode, usageError } from '../_errors.js';
import { formatDuration } from '../_format.js';
import { ProgressDisplay } from '../_progress.js';
import { entityTable, manifestSummary } from '../_render.js';
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
    entity: { type: 'string', description: 'Only this entity (repeatable or comma list)', valueHint: 'Name' },
    'include-entity': {
      type: 'string',
      description: 'Only these entities (repeatable or comma list)',
      valueHint: 'Name',
    },
    'exclude-entity': {
      type: 'string',
      description: 'Skip these entities (repeatable or comma list)',
      valueHint: 'Name',
    },
    'include-provider': {
      type: 'string',
      description: 'Only entities of these providers: sqlite, postgres, mysql, redis, json...',
      valueHint: 'provider',
    },
    'exclude-provider': { type: 'string', description: 'Skip entities of these providers', valueHint: 'provider' },
    source: {
      type: 'string',
      description:
        'Back up an existing database with no code (its tables are introspected): postgres://..., mysql://..., mariadb://..., sqlite:<path> or a .sqlite/.db file',
      valueHint: 'url',
    },
    introspect: { type: 'boolean', description: 'Also back up tables of the configured sources that no code declares' },
    description: { type: 'string', description: 'Free text stored in the manifest' },
    tag: { type: 'string', description: 'Tag (repeatable or comma list); find backups by tag with `query --tag`' },
    profile: {
      type: 'string',
      description: 'Storage profile to write to (default: Koan.Backup.DefaultStorageProfile, else the default profile)',
    },
    'batch-size': {
      type: 'string',
      description: 'Records read per batch, 1-100000 (default: Koan.Backup.DefaultBatchSize, 1000)',
    },
    compress: {
      type: 'boolean',
      default: true,
      description: 'Deflate the entries',
      negativeDescription: 'Store entries uncompressed (faster, larger)',
    },
    level: {
      type: 'string',
      description: 'Deflate level 1 (fastest) to 9 (smallest) (default: Koan.Backup.CompressionLevel, 1)',
    },
    concurrency: { type: 'string', description: 'Sources read at the same time, 1-64 (default 1)' },
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
    const options: GlobalBackupOptions & { introspect: boolean } = {
      ...(args.description !== undefined ? { description: args.description } : {}),
      tags: optionalList(rawArgs, 'tag') ?? [],
      ...(args.profile ? { storageProfile: args.profile } : {}),
      ...opt('batchSize', batchSizeOption(args['batch-size'], 'read per query')),
      compressData: args.compress !== false,
      ...opt(
        'compressionLevel',
        intOption(
          args.level,
          'level',
          1,
          9,
          'Deflate level: 1 is fastest, 9 smallest (e.g. --level 6); --no-compress stores entries uncompressed.',
        ),
      ),
      ...opt(
        'maxConcurrency',
        intOption(args.concurrency, 'concurrency', 1, 64, 'Sources read at the same time, e.g. --concurrency 2.'),
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
    return withContext(
      session,
      args,
      async (context) => {
        const targets: BackupTarget[] = await selectTargets(context, options);
        const found = new Set(targets.map((t) => t.entity.schema.name.toLowerCase()));
        const missing = only.filter((e) => !found.has(e.toLowerCase()));
        if (missing.length) {
          const all = await selectTargets(context, { introspect: options.introspect });
          throw new CLIError(`No entity named ${missing.join(', ')} was discovered.`, 'ENTITY_NOT_FOUND', {
            exitCode: ExitCode.NOT_FOUND,
            details: { missing, discovered: [...new Set(all.map((t) => t.entity.schema.name))] },
            hint: `Discovered: ${[...new Set(all.map((t) => t.entity.schema.name))].join(', ') || '(none)'}. See \`koan-backup entities\`.`,
          });
        }
        if (targets.length === 0) {
          const all = await selectTargets(context, { introspect: options.introspect });
          if (all.length > 0) {
            // Entities were discovered; the filters left none of them.
            const filters = [
              ...only.map((e) => `--entity ${e}`),
              ...(options.excludeEntityTypes ?? []).map((e) => `--exclude-entity ${e}`),
              ...(options.includeProviders ?? []).map((p) => `--include-provider ${p}`),
              ...(options.excludeProviders ?? []).map((p) => `--exclude-provider ${p}`),
            ];
            const discovered = [...new Map(all.map((t) => [t.entity.schema.name, t.provider])).entries()];
            throw new CLIError(
              `Nothing to back up: no entity matches the filters (${filters.join(' ')}).`,
              'NOTHING_TO_BACK_UP',
              {
                exitCode: ExitCode.USAGE,
                details: { discovered: discovered.map(([name, provider]) => ({ name, provider })) },
                hint: `Discovered: ${discovered.map(([n, p]) => `${n} (${p})`).join(', ')}. Relax the filters; \`koan-backup entities\` shows what is discovered.`,
              },
            );
          }
          throw new CLIError(
            `Nothing to back up: no entity was discovered in ${args.source ? redactUrl(args.source) : 'the configured sources'}.`,
            'NOTHING_TO_BACK_UP',
            { exitCode: ExitCode.USAGE, hint: nothingDiscoveredHint(source?.provider, args.source) },
          );
        }
        const progress = new ProgressDisplay(session, { progress: args.progress });
        const listener = progress.listener;
        let result: Awaited<ReturnType<typeof runBackup>>;
        try {
          result = await runBackup(context, name, targets, {
            ...options,
            ...(listener ? { onProgress: listener } : {}),
          });
        } catch (e) {
          progress.clear();
          if (
            e instanceof KoanError &&
            e.code === 'BACKUP_FAILED' &&
            e.cause instanceof KoanError &&
            e.cause.code !== 'BACKUP_FAILED'
          ) {
            // Keep the underlying code (SOURCE_UNAVAILABLE, ABORTED...) so the exit code and hint fit the cause.
            throw new CLIError(e.message, e.cause.code, { exitCode: exitFor(e.cause.code), cause: e });
          }
          throw e;
        }
        progress.clear();
        const partial = result.status !== 'Completed';
        if (session.json) session.printJson(result);
        else {
          session.print(
            `Backup ${result.name} ${partial ? 'finished with failures' : 'completed'} in ${formatDuration(result.timings.totalMs)}${source ? ` from ${redactUrl(args.source!)}` : ''}`,
          );
          session.print();
          session.print(manifestSummary(result));
          session.print();
          session.print(entityTable(result.entities));
          session.print();
          // A backup of a database with no code restores with the archived schema, into a database named by URL.
          const restore = `koan-backup restore ${result.name}${source ? ' --target-source <url>' : ''} --dry-run`;
          session.print(`Next: koan-backup validate ${result.id}   |   ${restore}`);
        }
        if (partial) {
          session.note(
            `Warning: ${result.errorMessage ?? 'some entities failed'}; the backup is ${result.status}. Re-run with --no-continue-on-error to fail instead.`,
          );
          return ExitCode.FAILURE;
        }
        return ExitCode.OK;
      },
      source ? { sources: { cli: source } } : {},
    );
  },
});

/** Why `--source` (or the configured sources) gave no entity, and what to do instead. */
function nothingDiscoveredHint(provider: string | undefined, url: string | undefined): string {
  if (provider === 'redis' || provider === 'json')
    return `Introspection is not available for ${provider === 'redis' ? 'Redis' : 'JSON-file'} sources (there is no schema to read), so --source ${provider === 'redis' ? 'redis://...' : 'json:<dir>'} finds nothing to back up. Declare the entities with defineEntity, configure the source under Koan.Data.Sources in koan.config.json and pass --import <module>. As a restore target (--target-source) it needs no code.`;
  if (url)
    return `${redactUrl(url)} has no table that can be introspected: a table needs a primary key (one column or several) of a supported type. \`koan-backup entities --source <url>\` shows what is found.`;
  return 'Pass --import <module> with your defineEntity calls, --introspect to include tables no code declares, or --source <url> to back up a database directly. `koan-backup entities` shows what is discovered.';
}

function exitFor(code: string): number {
  if (code === 'ABORTED') return ExitCode.CANCELLED;
  if (code === 'ENTITY_NOT_FOUND' || code === 'BACKUP_NOT_FOUND') return ExitCode.NOT_FOUND;
  return ExitCode.FAILURE;
}
