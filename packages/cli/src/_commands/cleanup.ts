import { cleanupLeftovers } from '@koan/data-backup';
import { globalArgs } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { withContext } from '../_context.js';
import { usageError } from '../_errors.js';
import { formatBytes } from '../_format.js';

export default defineCliCommand({
  meta: {
    name: 'cleanup',
    description:
      "Remove leftovers of interrupted backups: incomplete uploads (temp files, multipart uploads) and archives whose sidecar was never written; only keys in Koan's backup layout (<name>/<name>-<stamp>-<id8>.zip), never other files",
  },
  args: {
    ...globalArgs,
    profile: { type: 'string', description: 'Only this storage profile (default: every profile)' },
    'older-than': { type: 'string', description: 'Only leftovers older than this (default 1h): e.g. 30m, 6h, 2d' },
    'dry-run': { type: 'boolean', description: 'List what would be removed, remove nothing' },
  },
  examples: [
    '# See what a crash left behind',
    'koan-backup cleanup --dry-run',
    'koan-backup cleanup --older-than 6h --profile primary-backup --json',
  ],
  async run(args, session) {
    const older = args['older-than'] ?? '1h';
    const m = /^(\d+)(m|h|d)$/.exec(older);
    if (!m)
      throw usageError(
        `--older-than ${older}: use a number with m, h or d (e.g. 30m, 6h, 2d).`,
        'Only leftovers older than this are removed (default 1h), so running work is never disturbed: e.g. --older-than 6h.',
      );
    const olderThanMs = Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'];
    return withContext(session, args, async (context) => {
      const report = await cleanupLeftovers(context, {
        olderThanMs,
        dryRun: args['dry-run'] ?? false,
        ...(args.profile ? { storageProfiles: [args.profile] } : {}),
        ...(session.io.signal ? { signal: session.io.signal } : {}),
      });
      if (session.json) session.printJson(report);
      else {
        const verb = report.dryRun ? 'Would remove' : 'Removed';
        session.print(
          `${verb} ${report.incompleteUploads.length} incomplete upload(s) and ${report.orphanArchives.length} orphan archive(s).`,
        );
        for (const u of report.incompleteUploads)
          session.print(`  upload  ${u.profile}:${u.key} (started ${u.startedAt})`);
        for (const a of report.orphanArchives)
          session.print(`  archive ${a.profile}:${a.key} (${formatBytes(a.size)})`);
      }
      return 0;
    });
  },
});
