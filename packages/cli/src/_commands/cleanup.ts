import { deleteDamagedArchive } from '@koan/data-backup/archive';
import { cleanupLeftovers } from '@koan/data-backup/maintenance';
import { globalArgs, opt, optionalList } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { confirmDestructive } from '../_confirm.js';
import { withContext } from '../_context.js';
import { usageError } from '../_errors.js';
import { formatBytes } from '../_format.js';

export default defineCliCommand({
  meta: {
    name: 'cleanup',
    description:
      "Remove leftovers of interrupted backups: uploads that never finished (temp files, multipart uploads, uncommitted blocks). Nothing at a final archive key is ever deleted (uploads are atomic, so it was whole when published): an archive whose sidecar is missing is reported, a complete one as a backup to adopt (--adopt writes its sidecar back), a damaged one for you to check (koan-backup validate <key>) and delete by key (--delete-damaged <key>). Only keys in Koan's backup layout (<name>/<name>-<stamp>-<id8>.zip), never other files",
  },
  args: {
    ...globalArgs,
    profile: { type: 'string', description: 'Only this storage profile (default: every profile)' },
    'older-than': { type: 'string', description: 'Only leftovers older than this (default 1h): e.g. 30m, 6h, 2d' },
    'dry-run': { type: 'boolean', description: 'List what would be removed, remove nothing' },
    adopt: {
      type: 'boolean',
      description: 'Write the sidecar of complete archives that lost it, so they are in the catalog again',
    },
    'delete-damaged': {
      type: 'string',
      description:
        'Only delete this one damaged archive that cleanup reported (in --profile, default: the default profile): refused unless it has no sidecar and is damaged now. Asks first (--yes in scripts)',
      valueHint: 'key',
    },
    yes: { type: 'boolean', alias: 'y', description: 'With --delete-damaged: delete without asking' },
  },
  examples: [
    '# See what a crash left behind',
    'koan-backup cleanup --dry-run',
    'koan-backup cleanup --older-than 6h --profile primary-backup --json',
    '# Delete an archive cleanup reported as damaged, once you have looked at it',
    'koan-backup cleanup --delete-damaged nightly/nightly-20241217-020000-1a2b3c4d.zip --profile primary-backup --yes',
  ],
  async run(args, session, rawArgs) {
    const olderThanMs = olderThanOption(args['older-than']);
    const damaged = optionalList(rawArgs, 'delete-damaged');
    if (damaged && damaged.length > 1)
      throw usageError(
        `--delete-damaged takes one key at a time (given ${damaged.length}).`,
        'Check each archive first (koan-backup validate <key> --profile <profile>), then delete it on its own.',
      );
    const others = (['dry-run', 'adopt', 'older-than'] as const).filter(
      (f) => args[f] !== undefined && args[f] !== false,
    );
    if (damaged && others.length)
      throw usageError(
        `--delete-damaged deletes one archive and does nothing else: drop --${others.join(', --')}.`,
        'Run `koan-backup cleanup --dry-run` first to see what cleanup reports as damaged.',
      );
    if (args.yes && !damaged)
      throw usageError('--yes only confirms --delete-damaged <key>; cleanup itself removes only unfinished uploads.');
    return withContext(session, args, async (context) => {
      if (damaged) {
        const key = damaged[0]!;
        const profile = context.profileName(args.profile);
        await confirmDestructive(session, {
          yes: args.yes,
          question: `Delete the damaged archive ${key} from ${profile}? This cannot be undone.`,
          flag: '--delete-damaged',
          command: `cleanup --delete-damaged ${key} --profile ${profile}`,
        });
        const receipt = await deleteDamagedArchive(
          context,
          { key, profile },
          session.io.signal ? { signal: session.io.signal } : {},
        );
        if (session.json) session.printJson(receipt);
        else
          session.print(
            `Deleted ${receipt.profile}:${receipt.key} (${formatBytes(receipt.freedBytes)}), damaged: ${receipt.problem}`,
          );
        return 0;
      }
      const report = await cleanupLeftovers(context, {
        // Absent, the library's own default (1h) applies.
        ...opt('olderThanMs', olderThanMs),
        dryRun: args['dry-run'] ?? false,
        adopt: args.adopt ?? false,
        ...(args.profile ? { storageProfiles: [args.profile] } : {}),
        ...(session.io.signal ? { signal: session.io.signal } : {}),
      });
      if (session.json) session.printJson(report);
      else {
        const would = report.dryRun ? 'would be ' : '';
        const damagedCount = report.orphanArchives.filter((a) => a.state === 'damaged').length;
        session.print(
          `${report.dryRun ? 'Would remove' : 'Removed'} ${report.incompleteUploads.length} incomplete upload(s). ${report.orphanArchives.length} archive(s) without a sidecar${damagedCount ? ` (${damagedCount} damaged)` : ''}: kept, archives are never deleted by cleanup.`,
        );
        for (const u of report.incompleteUploads)
          session.print(`  upload  ${u.profile}:${u.key} (started ${u.startedAt})`);
        for (const a of report.orphanArchives) {
          const what =
            a.action === 'adopted'
              ? `${would}adopted: backup ${a.backup?.name} (${a.backup?.id}) is in the catalog again`
              : a.state === 'complete'
                ? `kept: backup ${a.backup?.name} (${a.backup?.id}) lost its sidecar; bring it back with koan-backup adopt ${a.key} --profile ${a.profile}`
                : `kept: damaged (${a.problem}); check it with koan-backup validate ${a.key} --profile ${a.profile}, delete it with koan-backup cleanup --delete-damaged ${a.key} --profile ${a.profile}`;
          session.print(`  archive ${a.profile}:${a.key} (${formatBytes(a.size)}) ${what}`);
        }
      }
      return 0;
    });
  },
});

/** `--older-than 30m|6h|2d` in milliseconds. */
function olderThanOption(older: string | undefined): number | undefined {
  if (older === undefined) return undefined;
  const m = /^(\d+)(m|h|d)$/.exec(older);
  if (!m)
    throw usageError(
      `--older-than ${older}: use a number with m, h or d (e.g. 30m, 6h, 2d).`,
      'Only leftovers older than this are removed (default 1h), so running work is never disturbed: e.g. --older-than 6h.',
    );
  return Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'];
}
