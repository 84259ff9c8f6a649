import { KoanError } from '@koan/data';
import {
  applyRetention,
  DEFAULT_MIN_AGE_HOURS,
  DEFAULT_PROTECTED_TAGS,
  effectiveRetentionPolicy,
  KEEP_COUNTS,
  type RetentionPolicy,
} from '@koan/data-backup/maintenance';
import { globalArgs, optionalList } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { confirmDestructive } from '../_confirm.js';
import { withContext } from '../_context.js';
import { CLIError, ExitCode, usageError } from '../_errors.js';
import { formatBytes, formatTime, renderTable } from '../_format.js';

const count = (v: string | undefined, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw usageError(`--${flag} ${v}: give a whole number (0 keeps none of that kind).`);
  return Number(v);
};

const FLAGS: Record<(typeof KEEP_COUNTS)[number], string> = {
  keepLast: 'keep-last',
  keepHourly: 'keep-hourly',
  keepDaily: 'keep-daily',
  keepWeekly: 'keep-weekly',
  keepMonthly: 'keep-monthly',
  keepYearly: 'keep-yearly',
};

/** The policy in words: `last 3, 7 daily, 4 weekly, within 30d`. */
function describePolicy(policy: RetentionPolicy): string {
  const parts = KEEP_COUNTS.filter((k) => (policy[k] ?? 0) > 0).map((k) =>
    k === 'keepLast' ? `the last ${policy[k]}` : `${policy[k]} ${k.slice(4).toLowerCase()}`,
  );
  if (policy.keepWithin) parts.push(`everything within ${policy.keepWithin} of the newest`);
  return parts.join(', ');
}

export default defineCliCommand({
  meta: {
    name: 'prune',
    description:
      "Apply a retention policy (restic's forget rules, per backup name in each storage profile): keep what the rules say, delete the rest. The newest healthy backup of each name in each profile whose archive exists (or, when none is, its newest restorable one), protected tags and backups younger than --min-age-hours are always kept. Without any --keep-* flag, Koan.Backup.RetentionPolicy applies; a --name no backup has is an error (exit 4) listing the names",
  },
  args: {
    ...globalArgs,
    'keep-last': { type: 'string', description: 'Keep the newest N completed backups of each name', valueHint: 'N' },
    'keep-hourly': { type: 'string', description: 'Keep the newest backup of each of the last N hours (UTC)' },
    'keep-daily': { type: 'string', description: 'Keep the newest backup of each of the last N days (UTC)' },
    'keep-weekly': { type: 'string', description: 'Keep the newest backup of each of the last N ISO weeks' },
    'keep-monthly': { type: 'string', description: 'Keep the newest backup of each of the last N months' },
    'keep-yearly': { type: 'string', description: 'Keep the newest backup of each of the last N years' },
    'keep-within': {
      type: 'string',
      description: 'Keep every backup made within this duration before the newest one of its name: 30d, 12h, 2w, 1y6m',
      valueHint: 'duration',
    },
    'protect-tag': {
      type: 'string',
      description: `Also never delete backups with this tag (repeatable), besides Koan.Backup.RetentionPolicy.ProtectedTags (default ${DEFAULT_PROTECTED_TAGS.join(', ')})`,
      valueHint: 'tag',
    },
    'min-age-hours': {
      type: 'string',
      description: `Never delete backups younger than this (default: ...MinAgeHours, else ${DEFAULT_MIN_AGE_HOURS})`,
    },
    name: { type: 'string', description: 'Only backups with this name (repeatable)', valueHint: 'name' },
    tag: { type: 'string', description: 'Only backups having this tag (repeatable)', valueHint: 'tag' },
    profile: { type: 'string', description: 'Only this storage profile (default: every profile)' },
    'dry-run': { type: 'boolean', description: 'Show what would be kept and deleted, delete nothing' },
    yes: { type: 'boolean', alias: 'y', description: 'Delete without asking (required when not on a terminal)' },
  },
  examples: [
    '# Preview the configured policy (Koan.Backup.RetentionPolicy)',
    'koan-backup prune --dry-run',
    '# Keep 7 daily and 4 weekly backups of "nightly", and the last 3 whatever their age',
    'koan-backup prune --name nightly --keep-last 3 --keep-daily 7 --keep-weekly 4 --yes',
    '# Keep everything from the last 30 days; never touch backups tagged "release" (nor keep/permanent)',
    'koan-backup prune --keep-within 30d --protect-tag release --dry-run',
  ],
  async run(args, session, rawArgs) {
    return withContext(session, args, async (context) => {
      const configured = context.config.retentionPolicy;
      const typed: Record<string, unknown> = {};
      for (const k of KEEP_COUNTS) {
        const v = count(args[FLAGS[k]] as string | undefined, FLAGS[k]);
        if (v !== undefined) typed[k] = v;
      }
      if (args['keep-within'] !== undefined) typed.keepWithin = args['keep-within'];
      const minAge = args['min-age-hours'];
      if (minAge !== undefined && !/^\d+(\.\d+)?$/.test(minAge))
        throw usageError(`--min-age-hours ${minAge}: give a number of hours (0 protects nothing by age).`);
      const protectTags = optionalList(rawArgs, 'protect-tag');
      // Rules typed on the command line are the whole set of rules; --protect-tag adds to the protected tags. Neither
      // flags nor configured rules: the library's error names the flags and Koan.Backup.RetentionPolicy.
      const policy = withExampleHint(() =>
        effectiveRetentionPolicy(configured, {
          rules: typed,
          rulesGivenAs: `${KEEP_COUNTS.map((k) => `--${FLAGS[k]}`).join(', ')} or --keep-within`,
          ...(protectTags ? { protectTags } : {}),
          ...(minAge !== undefined ? { minAgeHours: Number(minAge) } : {}),
        }),
      );
      const names = optionalList(rawArgs, 'name');
      const tags = optionalList(rawArgs, 'tag');
      const options = {
        policy,
        ...(args.profile ? { storageProfiles: [args.profile] } : {}),
        ...(names || tags ? { scope: { ...(names ? { names } : {}), ...(tags ? { tags } : {}) } } : {}),
      };
      const plan = await applyRetention(context, { ...options, dryRun: true });
      for (const p of plan.unavailableProfiles)
        session.note(`Warning: profile ${p.profile} could not be listed (${p.code}): its backups were left alone.`);
      for (const b of plan.missingArchives)
        session.note(
          `Warning: backup ${b.name} (${b.id}, ${b.createdAt}) in ${b.storageProfile} has lost its archive ${b.archiveKey}: it restores nothing, so it never counts as the newest healthy backup (the newest one with its archive is kept). Check the storage; koan-backup delete ${b.id} --profile ${b.storageProfile} removes the record.`,
        );
      if (!args['dry-run'] && plan.remove.length)
        await confirmDestructive(session, {
          yes: args.yes,
          question: `Delete ${plan.remove.length} backup(s) (${formatBytes(plan.freedBytes)}) and keep ${plan.keep.length}?`,
          flag: 'prune',
          command: 'prune ...',
        });
      const result = args['dry-run'] || !plan.remove.length ? plan : await applyRetention(context, options);
      if (session.json) {
        session.printJson({ policy, dryRun: args['dry-run'] ?? false, ...result });
        return 0;
      }
      const tagsKept = policy.protectedTags ?? DEFAULT_PROTECTED_TAGS;
      session.print(
        `Policy: keep ${describePolicy(policy)} of each backup name in each profile. Always kept: the newest healthy backup of each name in each profile whose archive exists, backups tagged ${tagsKept.join(', ') || '(none)'}, and anything younger than ${policy.minAgeHours} h.`,
      );
      const deleting = args['dry-run'] ? 'would delete' : 'deleted';
      const outside = result.keep.filter((k) => k.reasons.length === 1 && k.reasons[0] === 'outside the scope');
      const rows = [
        ...result.keep
          .filter((k) => !outside.includes(k))
          .map((k) => ({ action: 'keep', b: k.backup, why: k.reasons.join(', ') })),
        ...result.remove.map((b) => ({ action: deleting, b, why: 'no rule keeps it' })),
      ].sort((x, y) => (x.b.name < y.b.name ? -1 : x.b.name > y.b.name ? 1 : x.b.createdAt < y.b.createdAt ? 1 : -1));
      session.print(
        renderTable(rows, [
          { header: 'ACTION', value: (r) => r.action },
          { header: 'NAME', value: (r) => r.b.name },
          { header: 'CREATED', value: (r) => formatTime(r.b.createdAt) },
          { header: 'PROFILE', value: (r) => r.b.storageProfile },
          { header: 'SIZE', value: (r) => formatBytes(r.b.sizeBytes), align: 'right' },
          { header: 'WHY', value: (r) => r.why },
        ]),
      );
      session.print(
        `${args['dry-run'] ? 'Would free' : 'Freed'} ${formatBytes(result.freedBytes)} (${result.remove.length} backup(s)); ${result.keep.length - outside.length} kept${outside.length ? `; ${outside.length} outside --name/--tag left alone` : ''}.`,
      );
      return 0;
    });
  },
});

/** The policy, or the library's "no rules" error with an example command as its hint. */
function withExampleHint(policy: () => RetentionPolicy): RetentionPolicy {
  try {
    return policy();
  } catch (e) {
    if (!(e instanceof KoanError) || e.code !== 'INVALID_OPTION' || e.details.option !== 'policy') throw e;
    throw new CLIError(e.message, e.code, {
      exitCode: ExitCode.USAGE,
      cause: e,
      details: { ...e.details },
      hint: 'For example: koan-backup prune --dry-run --keep-daily 7 --keep-weekly 4 --keep-monthly 12 (or "RetentionPolicy": { "KeepDaily": 7, "KeepWeekly": 4, "KeepMonthly": 12 } under Koan.Backup).',
    });
  }
}
