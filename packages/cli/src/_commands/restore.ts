import { assertSetName, buildSchema, Entity, type FieldsShape, getEntity, type SourceConfig } from '@koan/data';
import {
  type BackupContext,
  type BackupSidecar,
  type EntityManifest,
  type GlobalRestoreOptions,
  locateBackup,
  runRestore,
  type SchemaSnapshot,
} from '@koan/data-backup';
import {
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
import { CLIError, ExitCode, usageError } from '../_errors.js';
import { ProgressDisplay } from '../_progress.js';
import { restoreSummary } from '../_render.js';
import { looksLikeSourceUrl, parseSourceUrl } from '../_source-url.js';

const TARGET_SOURCE = 'target';

export default defineCliCommand({
  meta: {
    name: 'restore',
    description: 'Restore entities from a backup (by name: the newest completed one; or by id)',
  },
  args: {
    ref: { type: 'positional', required: false, description: 'Backup name or id (see `koan-backup list`)' },
    ...globalArgs,
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
        "Restore into this source instead: a configured source name or a URL (postgres://..., sqlite:<path>, json:<dir>). Default: the declared entity's source, else the archived one if configured",
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
    'batch-size': { type: 'string', description: 'Records written per batch, 1-100000' },
    'dry-run': { type: 'boolean', description: 'Report what would change and write nothing' },
    lenient: {
      type: 'boolean',
      description: 'Schema drift: drop removed fields and convert widened types instead of refusing',
    },
    concurrency: { type: 'string', description: 'Sources restored at the same time, 1-64 (default 1)' },
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
  ],
  async run(args, session, rawArgs) {
    const ref = args.ref ?? args['backup-id'];
    if (!ref)
      throw usageError(
        'Name the backup to restore: koan-backup restore <name|id>.',
        'See the backups with `koan-backup list`.',
      );
    if (args['target-set'] !== undefined) {
      try {
        assertSetName(args['target-set']);
      } catch (e) {
        throw usageError(`--target-set: ${(e as Error).message}`);
      }
    }
    const only = [...(optionalList(rawArgs, 'entity') ?? []), ...(optionalList(rawArgs, 'include-entity') ?? [])];
    const exclude = optionalList(rawArgs, 'exclude-entity') ?? [];
    const sets = optionalList(rawArgs, 'set');
    const options: GlobalRestoreOptions = {
      ...(sets ? { sets } : {}),
      ...(args.profile ? { storageProfile: args.profile } : {}),
      ...(args['backup-id'] ? { backupId: args['backup-id'] } : {}),
      replaceExisting: Boolean(args.replace),
      mode: choiceOption(args.mode, 'mode', ['upsert', 'insert'] as const) ?? 'upsert',
      validateBeforeRestore: args.validate !== false,
      optimizeForBulkInsert: args.bulk !== false,
      dryRun: Boolean(args['dry-run']),
      schemaPolicy: args.lenient ? 'lenient' : 'strict',
      ...opt('batchSize', batchSizeOption(args['batch-size'], 'written per batch')),
      ...opt(
        'maxConcurrency',
        intOption(args.concurrency, 'concurrency', 1, 64, 'Sources restored at the same time, e.g. --concurrency 2.'),
      ),
      ...(session.io.signal ? { signal: session.io.signal } : {}),
    };
    const targetArg = args['target-source'];
    let extraSources: Record<string, SourceConfig> | undefined;
    let targetSource: string | undefined;
    if (targetArg && looksLikeSourceUrl(targetArg)) {
      extraSources = { [TARGET_SOURCE]: parseSourceUrl(targetArg, session.cwd) };
      targetSource = TARGET_SOURCE;
    } else if (targetArg) targetSource = targetArg;

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
        // entity names are checked against the archive that is then restored.
        const located = await locateBackup(context, options.backupId ?? ref, {
          ...(options.storageProfile ? { storageProfile: options.storageProfile } : {}),
          allowPartial: options.backupId !== undefined,
          ...(options.signal ? { signal: options.signal } : {}),
        });
        checkEntityNames(located.sidecar, only, exclude);
        if (options.replaceExisting && !options.dryRun)
          await confirmDestructive(session, {
            yes: args.yes,
            question: `Replace: delete the existing records of every entity restored from ${located.sidecar.name} (${located.sidecar.id}), then restore?`,
            flag: '--replace',
            command: `restore ${ref}`,
          });
        const progress = new ProgressDisplay(session, { progress: args.progress });
        const listener = progress.listener;
        const wanted = (name: string, list: readonly string[]) =>
          list.some((x) => x.toLowerCase() === name.toLowerCase());
        try {
          const report = await runRestore(
            context,
            located.sidecar.id,
            (item) => (!only.length || wanted(item.entityType, only)) && !wanted(item.entityType, exclude),
            (item, snapshot) => resolveTarget(context, item, snapshot, args['target-set'] ?? item.set, targetSource),
            {
              ...options,
              backupId: located.sidecar.id,
              storageProfile: located.profile,
              ...(listener ? { onProgress: listener } : {}),
            },
          );
          progress.clear();
          if (session.json) session.printJson(report);
          else session.print(restoreSummary(report));
          return 0;
        } finally {
          progress.clear();
        }
      },
      extraSources ? { extraSources } : {},
    );
  },
});

/**
 * Refuses `--entity` / `--exclude-entity` names the backup does not hold: a typo must not restore nothing (and
 * report success), nor restore an entity the caller meant to skip.
 */
function checkEntityNames(sidecar: BackupSidecar, only: readonly string[], exclude: readonly string[]): void {
  const archived = [...new Set(sidecar.entities.map((e) => e.entityType))];
  const held = new Set(archived.map((e) => e.toLowerCase()));
  const unknown = (names: readonly string[]) => names.filter((n) => !held.has(n.toLowerCase()));
  const missing = unknown(only);
  const missingExcluded = unknown(exclude);
  if (!missing.length && !missingExcluded.length) return;
  const parts = [
    ...(missing.length ? [`${missing.join(', ')} (--entity)`] : []),
    ...(missingExcluded.length ? [`${missingExcluded.join(', ')} (--exclude-entity)`] : []),
  ];
  throw new CLIError(
    `Backup ${sidecar.name} (${sidecar.id}) holds no entity named ${parts.join(' or ')}; nothing was restored.`,
    'ENTITY_NOT_FOUND',
    {
      exitCode: ExitCode.NOT_FOUND,
      hint: `It holds: ${archived.join(', ') || '(no entities)'}. See \`koan-backup inspect ${sidecar.id}\`.`,
      details: {
        backupId: sidecar.id,
        ...(missing.length ? { missing } : {}),
        ...(missingExcluded.length ? { missingExcluded } : {}),
        archived,
      },
    },
  );
}

/**
 * Where an archived entity goes: the entity this process declares under that name (its own source),
 * else the archived schema in `--target-source`, else in the source it came from when that is configured.
 */
function resolveTarget(
  context: BackupContext,
  item: EntityManifest,
  snapshot: SchemaSnapshot | undefined,
  targetSet: string,
  targetSource: string | undefined,
): { entity: Entity; targetSet: string } | undefined {
  const runtime = context.runtime;
  const declared = getEntity(item.entityType);
  const usable =
    declared && declared.schema.origin === 'declared' && runtime.sources[declared.schema.source] ? declared : undefined;
  if (usable && (!targetSource || usable.schema.source === targetSource))
    return { entity: usable.withRuntime(runtime), targetSet };
  const source = targetSource ?? (runtime.sources[item.source] ? item.source : undefined);
  const s = snapshot?.schema ?? declared?.schema;
  if (!source || !s) return undefined;
  const schema = buildSchema(
    { name: s.name, key: s.key, fields: s.fields, source, ...(s.table ? { table: s.table } : {}) },
    s.origin ?? 'introspected',
  );
  return { entity: new Entity(schema, {} as FieldsShape, runtime), targetSet };
}
