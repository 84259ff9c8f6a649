import { BackupDiscoveryService } from '@koan/data-backup';
import { globalArgs, progressArgs } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { withContext } from '../_context.js';
import { ExitCode } from '../_errors.js';
import { formatCount, formatDuration } from '../_format.js';
import { lookupArgs, lookupOptions, requiredRef } from '../_lookup.js';
import { ProgressDisplay } from '../_progress.js';
import { boundedList } from '../_render.js';

export default defineCliCommand({
  meta: {
    name: 'validate',
    description:
      'Deep-validate a backup: archive hash, ZIP structure, manifest, every entry checksum and every record (exit 3 if invalid)',
  },
  args: {
    ref: {
      type: 'positional',
      required: false,
      description: 'Backup name (the newest with it), id, storage key of an archive, or path of a .zip file',
    },
    ...globalArgs,
    ...lookupArgs,
    profile: { type: 'string', description: 'Storage profile to look in (default: every profile)' },
    store: {
      type: 'boolean',
      default: true,
      description: 'Record the result in the catalog (health, last validated)',
      negativeDescription: 'Do not record the result',
    },
    ...progressArgs,
  },
  examples: [
    'koan-backup validate nightly',
    '# In CI: fail the job when the newest nightly backup is damaged',
    'koan-backup validate nightly --json > validation.json || exit 1',
  ],
  async run(args, session) {
    const ref = requiredRef(args.ref, 'validate');
    return withContext(session, args, async (context) => {
      const progress = new ProgressDisplay(session, { progress: args.progress });
      const listener = progress.listener;
      const result = await new BackupDiscoveryService(context).validateBackup(ref, {
        ...lookupOptions(ref, args, session.cwd),
        ...(session.io.signal ? { signal: session.io.signal } : {}),
        ...(listener ? { onProgress: listener } : {}),
        store: args.store !== false,
      });
      progress.clear();
      if (session.json) session.printJson(result);
      else {
        session.print(
          `${result.isValid ? 'Valid' : 'INVALID'}: ${result.name} (${result.backupId}), health ${result.healthStatus}; checked ${result.checkedEntries} entries, ${formatCount(result.checkedLines)} records in ${formatDuration(result.durationMs)}`,
        );
        if (result.issues.length) session.print(`\n${boundedList('Issues', result.issues)}`);
        if (result.warnings.length) session.print(`\n${boundedList('Warnings', result.warnings)}`);
        if (!result.isValid)
          session.note(
            `\nDo not restore from this backup; pick another with \`koan-backup list\` or \`koan-backup query --search ${result.name}\`.`,
          );
      }
      return result.isValid ? ExitCode.OK : ExitCode.VALIDATION_FAILED;
    });
  },
});
