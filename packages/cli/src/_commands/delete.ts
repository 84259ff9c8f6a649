import { BackupDiscoveryService } from '@koan/data-backup';
import { globalArgs } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { confirmDestructive } from '../_confirm.js';
import { withContext } from '../_context.js';
import { formatBytes, formatCount, formatTime } from '../_format.js';
import { requiredRef } from '../_lookup.js';

export default defineCliCommand({
  meta: { name: 'delete', description: 'Delete a backup (sidecar, then archive) and print a receipt' },
  args: {
    ref: {
      type: 'positional',
      required: false,
      description: 'Backup name (the newest with it) or id; an id is safest',
    },
    ...globalArgs,
    profile: { type: 'string', description: 'Storage profile to look in (default: every profile)' },
    yes: { type: 'boolean', alias: 'y', description: 'Delete without asking (required when not on a terminal)' },
  },
  examples: [
    'koan-backup delete 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
    '# In a script',
    'koan-backup delete old-nightly --yes --json',
  ],
  async run(args, session) {
    const ref = requiredRef(args.ref, 'delete');
    const profile = args.profile ? { storageProfile: args.profile } : {};
    return withContext(session, args, async (context) => {
      const discovery = new BackupDiscoveryService(context);
      const info = await discovery.getBackup(ref, profile);
      await confirmDestructive(session, {
        yes: args.yes,
        question: `Delete backup ${info.name} (${info.id}, ${formatTime(info.createdAt)}, ${formatCount(info.itemCount)} items, ${formatBytes(info.sizeBytes)}) from ${info.storageProfile}? This cannot be undone.`,
        flag: 'delete',
        command: `delete ${info.id}`,
      });
      // Delete by id, so a newer backup with the same name created meanwhile is never the one removed.
      const receipt = await discovery.deleteBackup(info.id, { storageProfile: info.storageProfile });
      if (session.json) session.printJson(receipt);
      else {
        session.print(
          `Deleted backup ${receipt.name} (${receipt.id}) from ${receipt.storageProfile} at ${formatTime(receipt.deletedAt)}; freed ${formatBytes(receipt.freedBytes)}:`,
        );
        for (const key of receipt.deletedKeys) session.print(`  - ${key}`);
      }
      return 0;
    });
  },
});
