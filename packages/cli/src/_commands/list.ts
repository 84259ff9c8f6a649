import { BackupDiscoveryService } from '@koan/data-backup';
import { globalArgs, optionalList } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { withContext } from '../_context.js';
import { catalogTable } from '../_render.js';

export default defineCliCommand({
  meta: { name: 'list', description: 'List the backup catalog of every storage profile, newest first' },
  args: {
    ...globalArgs,
    profile: { type: 'string', description: 'Only these storage profiles (repeatable or comma list)' },
  },
  examples: [
    '# Every backup in every profile',
    'koan-backup list',
    '# Machine-readable, one profile',
    'koan-backup list --profile s3 --json | jq ".backups[0].id"',
  ],
  async run(args, session, rawArgs) {
    const profiles = optionalList(rawArgs, 'profile');
    return withContext(session, args, async (context) => {
      const catalog = await new BackupDiscoveryService(context).discoverAllBackups(
        profiles ? { storageProfiles: profiles } : {},
      );
      if (session.json) {
        session.printJson(catalog);
        return 0;
      }
      if (catalog.backups.length === 0)
        session.print(
          `No backups in storage profile${catalog.profiles.length > 1 ? 's' : ''} ${catalog.profiles.join(', ')}. Create one with \`koan-backup backup <name>\`.`,
        );
      else {
        session.print(catalogTable(catalog.backups));
        session.print();
        session.print(
          `${catalog.totalCount} backup${catalog.totalCount === 1 ? '' : 's'} in ${catalog.profiles.join(', ')}`,
        );
      }
      for (const u of catalog.unreadable)
        session.note(`Warning: unreadable sidecar ${u.key} in ${u.profile}: ${u.message}`);
      for (const u of catalog.unavailableProfiles)
        session.note(
          `Warning: storage profile ${u.profile} could not be listed; its backups are missing from this list. ${u.code}: ${u.message}`,
        );
      return 0;
    });
  },
});
