import { cleanupLeftovers } from '@koan/data-backup';
import { globalArgs, opt } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { withContext } from '../_context.js';
import { usageError } from '../_errors.js';
import { formatBytes } from '../_format.js';

export default defineCliCommand({
  meta: {
    name: 'cleanup',
    description:
      "Remove leftovers of interrupted backups: incomplete uploads (temp files, multipart uploads) and archives that never finished. An archive whose sidecar is missing but that is complete is a backup: it is kept and reported (--adopt writes its sidecar back), never deleted. Only keys in Koan's backup layout (<name>/<name>-<stamp>-<id8>.zip), never other files",
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
  },
  examples: [
    '# See what a crash left behind',
    'koan-backup cleanup --dry-run',
    'koan-backup cleanup --older-than 6h --profile primary-backup --json',
  ],
  async run(args, session) {
    const olderThanMs = olderThanOption(args['older-than']);
    return withContext(session, args, async (context) => {
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
        const deleted = report.orphanArchives.filter((a) => a.action === 'deleted');
        session.print(
          `${report.dryRun ? 'Would remove' : 'Removed'} ${report.incompleteUploads.length} incomplete upload(s) and ${deleted.length} unfinished archive(s).`,
        );
        for (const u of report.incompleteUploads)
          session.print(`  upload  ${u.profile}:${u.key} (started ${u.startedAt})`);
        for (const a of report.orphanArchives) {
          const what =
            a.action === 'deleted'
              ? `${would}deleted: not a whole ZIP, an upload that never finished`
              : a.action === 'adopted'
                ? `${would}adopted: backup ${a.backup?.name} (${a.backup?.id}) is in the catalog again`
                : a.state === 'complete'
                  ? `kept: backup ${a.backup?.name} (${a.backup?.id}) lost its sidecar; bring it back with koan-backup adopt ${a.key} --profile ${a.profile}`
                  : `kept: damaged (${a.problem}); inspect it before deleting it by hand`;
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
