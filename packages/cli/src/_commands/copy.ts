import { copyBackup } from '@koan/data-backup/catalog';
import { globalArgs } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { withContext } from '../_context.js';
import { usageError } from '../_errors.js';
import { formatBytes } from '../_format.js';
import { requiredRef } from '../_lookup.js';

export default defineCliCommand({
  meta: {
    name: 'copy',
    description: 'Copy a backup to another storage profile: stream, verify at the destination, then publish there',
  },
  args: {
    ref: {
      type: 'positional',
      required: false,
      description: 'Backup name (the newest restorable one: Completed or PartiallyCompleted) or id',
    },
    ...globalArgs,
    to: { type: 'string', description: 'Destination storage profile (required)' },
    from: { type: 'string', description: 'Source storage profile (default: search every profile)' },
  },
  examples: [
    "# Ship last night's backup off-site",
    'koan-backup copy nightly --to disaster-recovery',
    'koan-backup copy 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b --from local --to primary-backup --json',
  ],
  async run(args, session) {
    const ref = requiredRef(args.ref, 'copy', 'koan-backup copy <name|id> --to <profile>');
    if (!args.to)
      throw usageError(
        'Say where to copy it: --to <storage profile>.',
        'Profiles are configured under Koan.Storage.Profiles in koan.config.json.',
      );
    const to = args.to;
    return withContext(session, args, async (context) => {
      const receipt = await copyBackup(context, ref, to, {
        ...(args.from ? { fromProfile: args.from } : {}),
        ...(session.io.signal ? { signal: session.io.signal } : {}),
      });
      if (session.json) session.printJson(receipt);
      else
        session.print(
          `Copied ${receipt.name} (${receipt.id}) from ${receipt.from} to ${receipt.to}: ${formatBytes(receipt.bytes)} verified (sha256 ${receipt.sha256.slice(0, 16)}…) in ${Math.round(receipt.durationMs)} ms.`,
        );
      return 0;
    });
  },
});
