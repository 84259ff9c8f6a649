import { applyRetention, DEFAULT_MIN_AGE_HOURS } from '@koan/data-backup';
import { globalArgs } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { confirmDestructive } from '../_confirm.js';
import { withContext } from '../_context.js';
import { usageError } from '../_errors.js';
import { formatTime } from '../_format.js';

const count = (v: string | undefined, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw usageError(`--${flag} ${v}: give a whole number (0 keeps none of that kind).`);
  return Number(v);
};

export default defineCliCommand({
  meta: {
    name: 'prune',
    description:
      'Apply the retention policy: keep the newest backup of each of the last N days, weeks and months (per backup name), delete the rest',
  },
  args: {
    ...globalArgs,
    'keep-daily': { type: 'string', description: 'Days to keep (default: Koan.Backup.RetentionPolicy.KeepDaily)' },
    'keep-weekly': { type: 'string', description: 'ISO weeks to keep (default: ...KeepWeekly)' },
    'keep-monthly': { type: 'string', description: 'Months to keep (default: ...KeepMonthly)' },
    profile: { type: 'string', description: 'Only this storage profile (default: every profile)' },
    'dry-run': { type: 'boolean', description: 'Show what would be kept and deleted, delete nothing' },
    yes: { type: 'boolean', alias: 'y', description: 'Delete without asking (required when not on a terminal)' },
  },
  examples: [
    '# Preview the configured policy',
    'koan-backup prune --dry-run',
    'koan-backup prune --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --yes',
  ],
  async run(args, session) {
    return withContext(session, args, async (context) => {
      const configured = context.config.retentionPolicy;
      const daily = count(args['keep-daily'], 'keep-daily') ?? configured?.keepDaily;
      const weekly = count(args['keep-weekly'], 'keep-weekly') ?? configured?.keepWeekly;
      const monthly = count(args['keep-monthly'], 'keep-monthly') ?? configured?.keepMonthly;
      if (daily === undefined || weekly === undefined || monthly === undefined)
        throw usageError(
          'No retention policy: pass --keep-daily, --keep-weekly and --keep-monthly, or set Koan.Backup.RetentionPolicy in koan.config.json.',
          'For example: koan-backup prune --dry-run --keep-daily 7 --keep-weekly 4 --keep-monthly 12 (or "RetentionPolicy": { "KeepDaily": 7, "KeepWeekly": 4, "KeepMonthly": 12 } under Koan.Backup).',
        );
      const policy = {
        keepDaily: daily,
        keepWeekly: weekly,
        keepMonthly: monthly,
        minAgeHours: configured?.minAgeHours ?? DEFAULT_MIN_AGE_HOURS,
      };
      const scope = args.profile ? { storageProfiles: [args.profile] } : {};
      const plan = await applyRetention(context, { policy, dryRun: true, ...scope });
      if (!args['dry-run'] && plan.remove.length)
        await confirmDestructive(session, {
          yes: args.yes,
          question: `Delete ${plan.remove.length} backup(s) and keep ${plan.keep.length}?`,
          flag: 'prune',
          command: 'prune',
        });
      const result =
        args['dry-run'] || !plan.remove.length ? plan : await applyRetention(context, { policy, ...scope });
      if (session.json)
        session.printJson({
          policy,
          dryRun: args['dry-run'] ?? false,
          keep: result.keep,
          remove: result.remove,
          deleted: result.deleted,
        });
      else {
        session.print(
          `Policy: keep ${daily} daily, ${weekly} weekly, ${monthly} monthly (never anything younger than ${policy.minAgeHours} h).`,
        );
        for (const k of result.keep)
          session.print(`  keep    ${k.backup.name} ${formatTime(k.backup.createdAt)} (${k.reasons.join(', ')})`);
        for (const b of result.remove)
          session.print(
            `  ${args['dry-run'] ? 'would delete' : 'deleted'} ${b.name} ${formatTime(b.createdAt)} ${b.id}`,
          );
      }
      return 0;
    });
  },
});
