import { type ArchiveRef, adoptArchive } from '@koan/data-backup/archive';
import { globalArgs } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { withContext } from '../_context.js';
import { usageError } from '../_errors.js';
import { archiveFileOf } from '../_lookup.js';

export default defineCliCommand({
  meta: {
    name: 'adopt',
    description:
      "Bring an archive back into the catalog: check it (structure, manifest, every entry's checksum), then write its sidecar from the manifest it holds. For archives whose sidecar was lost (copied by hand, a partial bucket sync, a crash before the commit marker) or written with backup --output",
  },
  args: {
    archive: {
      type: 'positional',
      required: false,
      description: 'Path of a .zip file, or the storage key of an archive in --profile',
    },
    ...globalArgs,
    profile: {
      type: 'string',
      description:
        'Profile the archive is in (a key) or goes into (a file is copied there); default: the default profile',
    },
  },
  examples: [
    '# An archive cleanup reported as kept (its sidecar is missing)',
    'koan-backup adopt nightly/nightly-20241217-020000-1a2b3c4d.zip',
    '# A file made with backup --output, copied into the "offsite" profile',
    'koan-backup adopt ./nightly.zip --profile offsite',
  ],
  async run(args, session) {
    const given = args.archive;
    if (!given)
      throw usageError(
        'Name the archive to adopt: koan-backup adopt <file.zip|key>.',
        '`koan-backup cleanup --dry-run` lists archives that lost their sidecar.',
      );
    if (!given.endsWith('.zip')) throw usageError(`${given}: name a .zip archive (a file path or a storage key).`);
    const path = archiveFileOf(given, session.cwd);
    const ref: ArchiveRef = path ? { path } : { key: given, ...(args.profile ? { profile: args.profile } : {}) };
    return withContext(session, args, async (context) => {
      const receipt = await adoptArchive(context, ref, {
        ...(args.profile ? { profile: args.profile } : {}),
        ...(session.io.signal ? { signal: session.io.signal } : {}),
      });
      if (session.json) session.printJson(receipt);
      else
        session.print(
          `Adopted backup ${receipt.name} (${receipt.id}) into profile ${receipt.profile}${receipt.copied ? ` (archive copied to ${receipt.archiveKey})` : ''}. Next: koan-backup validate ${receipt.id}`,
        );
      return 0;
    });
  },
});
