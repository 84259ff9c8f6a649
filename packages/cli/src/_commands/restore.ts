import type { SourceConfig } from '@koan/data';
import { assertSetName } from '@koan/data/adapter-kit';
import { type GlobalRestoreOptions, type RestoreReport, restoreAllEntities, shortfallOf } from '@koan/data-backup';
import { checkRestoreSelection, locateForRestore } from '@koan/data-backup/plan';
import { BATCH_SIZE, MAX_CONCURRENCY } from '@koan/data-backup/schemas';
import {
  batchBytesOption,
  batchSizeOption,
  choiceOption,
  entityArgs,
  globalArgs,
  intOption,
  opt,
  optionalList,
  progressArgs,
} from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { confirmDestructive } from '../_confirm.js';
import { importEntityModules, withContext } from '../_context.js';
import { ExitCode, usageError } from '../_errors.js';
import { lookupArgs, lookupOptions, requiredRef } from '../_lookup.js';
import { ProgressDisplay } from '../_progress.js';
import { droppedNotes, restoreSummary } from '../_render.js';
import { withFlagNames } from '../_selection.js';
import { looksLikeSourceUrl, parseSourceUrl } from '../_source-url.js';

const TARGET_SOURCE = 'target';

export default defineCliCommand({
  meta: {
    name: 'restore',
    description: 'Restore entities from a backup (by name: the newest completed one; or by id)',
  },
  args: {
    ref: {
      type: 'positional',
      required: false,
      description:
        'Backup name (the newest completed one), id, storage key of an archive, or path of a .zip file (see `koan-backup list`)',
    },
    ...globalArgs,
    ...lookupArgs,
    ...entityArgs,
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
    'target-set': {
      type: 'string',
      description:
        'Restore into this set instead of the archived one (an entity with several archived sets: pick one with --set)',
      valueHint: 'set',
    },
    set: {
      type: 'string',
      description: 'Only these archived sets (repeatable or comma list; default: every set)',
      valueHint: 'set',
    },
    'target-source': {
      type: 'string',
      description:
        "Restore every entity into this source, with its archived schema (composite keys kept) unless the app declares it there: a configured source name or a URL (postgres://..., sqlite:<path>, json:<dir>). Default: the declared entity's source, else the archived one if configured",
      valueHint: 'name|url',
    },
    replace: {
      type: 'boolean',
      description: 'Delete the existing records of each restored set first (asks for confirmation; --yes skips it)',
    },
    yes: {
      type: 'boolean',
      alias: 'y',
      description: 'Confirm --replace without asking (required when not on a terminal)',
    },
    mode: {
      type: 'enum',
      options: ['upsert', 'insert'],
      description:
        'Merge mode: upsert replaces records with the same key; insert fails on an existing key (default upsert)',
    },
    validate: {
      type: 'boolean',
      default: true,
      description: 'Verify checksums, line counts and schemas before writing',
      negativeDescription: 'Skip the pre-restore verification',
    },
    bulk: {
      type: 'boolean',
      default: true,
      description: "Use the provider's bulk-load path (COPY, LOAD DATA)",
      negativeDescription: 'Write with ordinary batched statements',
    },
    structure: {
      type: 'boolean',
      default: true,
      description:
        'Into the same kind of database the backup came from, create missing tables exactly as the source had them (native types, defaults, sequences, indexes, foreign keys)',
      negativeDescription:
        'Create missing tables from the field types instead (no foreign keys, indexes or sequences), as for another kind of database',
    },
    'batch-size': { type: 'string', description: `Records written per batch, ${BATCH_SIZE.min}-${BATCH_SIZE.max}` },
    'batch-bytes': {
      type: 'string',
      description:
        'Bytes written per batch, such as 1MiB or 512KiB: a batch closes at --batch-size records or at this size, whichever comes first (default: Koan.Backup.DefaultBatchBytes, 1MiB)',
      valueHint: 'size',
    },
    'dry-run': { type: 'boolean', description: 'Report what would change and write nothing' },
    lenient: {
      type: 'boolean',
      description:
        'Schema drift: drop removed fields, convert widened types and leave out fields an existing table has no column for (each named) instead of refusing; an entity that cannot be bridged is reported Failed and the restore exits 1',
    },
    concurrency: {
      type: 'string',
      description: `Sources restored at the same time, ${MAX_CONCURRENCY.min}-${MAX_CONCURRENCY.max} (default 1)`,
    },
    'backup-id': {
      type: 'string',
      description: 'Restore this exact backup id (also partial ones), whatever the name says',
      valueHint: 'id',
    },
    profile: { type: 'string', description: 'Storage profile to read from (default: search every profile)' },
    ...progressArgs,
  },
  examples: [
    '# Preview, then restore the newest completed "nightly" backup',
    'koan-backup restore nightly --dry-run',
    'koan-backup restore nightly',
    '# Replace the current data of two entities (scripts must pass --yes)',
    'koan-backup restore nightly --entity Order,Customer --replace --yes',
    '# Restore one exact backup into a staging set, tolerating schema drift',
    'koan-backup restore 0190a1b2-...-1234 --target-set staging --lenient',
    '# Bring one archived set of an entity back into another set',
    'koan-backup restore nightly --entity Order --set archive --target-set recovered',
    '# Restore a code-less backup into another database',
    'koan-backup restore legacy-shop --target-source sqlite:./restored.sqlite',
    '# Restore an archive file that is in no profile (written with backup --output, or copied by hand)',
    'koan-backup restore ./legacy-shop.zip --target-source postgres://localhost/shop_copy',
  ],
  async run(args, session, rawArgs) {
    const ref = requiredRef(args.ref ?? args['backup-id'], 'restore');
    if (args['target-set'] !== undefined) {
      try {
        assertSetName(args['target-set']);
      } catch (e) {
        throw usageError(`--target-set: ${(e as Error).message}`);
      }
    }
    const only = [...(optionalList(rawArgs, 'entity') ?? []), ...(optionalList(rawArgs, 'include-entity') ?? [])];
    const exclude = optionalList(rawArgs, 'exclude-entity');
    const sets = optionalList(rawArgs, 'set');
    const targetArg = args['target-source'];
    const targetUrl = targetArg !== undefined && looksLikeSourceUrl(targetArg);
    const targetSource = targetUrl ? TARGET_SOURCE : targetArg;
    const options: GlobalRestoreOptions = {
      ...(only.length ? { includeEntityTypes: only } : {}),
      ...(exclude ? { excludeEntityTypes: exclude } : {}),
      ...(args['target-set'] !== undefined ? { targetSet: args['target-set'] } : {}),
      ...(targetSource ? { targetSource } : {}),
      ...(sets ? { sets } : {}),
      ...lookupOptions(ref, args, session.cwd),
      ...(args['backup-id'] ? { backupId: args['backup-id'] } : {}),
      replaceExisting: Boolean(args.replace),
      ...opt('mode', choiceOption(args.mode, 'mode', ['upsert', 'insert'] as const)),
      validateBeforeRestore: args.validate !== false,
      optimizeForBulkInsert: args.bulk !== false,
      dryRun: Boolean(args['dry-run']),
      structure: args.structure !== false,
      ...(args.lenient ? { schemaPolicy: 'lenient' as const } : {}),
      ...opt('batchSize', batchSizeOption(args['batch-size'], 'written per batch')),
      ...opt('batchBytes', batchBytesOption(args['batch-bytes'])),
      ...opt(
        'maxConcurrency',
        intOption(
          args.concurrency,
          'concurrency',
          MAX_CONCURRENCY.min,
          MAX_CONCURRENCY.max,
          'Sources restored at the same time, e.g. --concurrency 2.',
        ),
      ),
      ...(session.io.signal ? { signal: session.io.signal } : {}),
    };
    const extraSources: Record<string, SourceConfig> | undefined =
      targetArg && targetUrl ? { [TARGET_SOURCE]: parseSourceUrl(targetArg, session.cwd) } : undefined;

    await importEntityModules(session, args, rawArgs);
    return withContext(
      session,
      args,
      async (context) => {
        if (targetSource && !context.runtime.sources[targetSource])
          throw usageError(
            `--target-source ${targetSource} is not a configured source (configured: ${context.runtime.sourceNames().join(', ')}).`,
            'Pass a configured source name, or a URL such as sqlite:./restored.sqlite or postgres://user:pass@host/db.',
          );
        // The backup the library would pick (by name: the newest completed one), pinned by id for the restore, so the
        // selection is checked (and --replace confirmed) against the archive that is then restored.
        const located = await locateForRestore(context, ref, options);
        for (const p of located.unavailableProfiles ?? [])
          session.note(
            `Warning: profile ${p.profile} could not be listed (${p.code}); it may hold a newer ${located.sidecar.name}.`,
          );
        try {
          checkRestoreSelection(located.sidecar, options);
        } catch (e) {
          throw withFlagNames(e);
        }
        if (options.replaceExisting && !options.dryRun)
          await confirmDestructive(session, {
            yes: args.yes,
            question: `Replace: delete the existing records of every entity restored from ${located.sidecar.name} (${located.sidecar.id}), then restore?`,
            flag: '--replace',
            command: `restore ${ref} ... --replace`,
          });
        const progress = new ProgressDisplay(session, { progress: args.progress });
        const listener = progress.listener;
        let report: RestoreReport;
        try {
          report = await restoreAllEntities(context, located, {
            ...options,
            ...(listener ? { onProgress: listener } : {}),
          });
        } finally {
          progress.clear();
        }
        if (session.json) session.printJson(report);
        else session.print(restoreSummary(report));
        // Archived values that were not written are said on stderr too, --json or not.
        for (const e of report.entities) for (const note of droppedNotes(e)) session.note(`Warning: ${note}`);
        const shortfall = shortfallOf(report);
        if (!shortfall) return ExitCode.OK;
        session.note(`Warning: ${shortfall.message}`);
        return ExitCode.FAILURE;
      },
      extraSources ? { extraSources } : {},
    );
  },
});
