import { type MonitorCheck, type MonitorProblem, type MonitorResult, monitorBackups } from '@koan/data-backup/monitor';
import { type NotificationFailure, Notifications } from '@koan/data-backup/notify';
import { globalArgs, optionalList } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { withContext } from '../_context.js';
import { ExitCode } from '../_errors.js';
import { formatBytes, formatTime } from '../_format.js';
import type { Session } from '../_io.js';

/** How long a run waits for the health.unhealthy webhook to be delivered (retries included) before it exits. */
const DELIVERY_WAIT_MS = 60_000;

const DETAILS = `CONFIGURATION

  The rules are Koan.Backup.Monitor in koan.config.json. Targets lists what is watched: a backup name ("Name",
  exact) or a tag ("Tag", any case; the backups carrying it are checked together). Each target gets the Defaults,
  with its own rules on top, and is checked in each storage profile it names (StorageProfiles; default: every profile):

    "Koan": { "Backup": { "Monitor": {
      "Defaults": { "MaxAgeHours": 26, "MinCount": 7, "MustBeValidatedWithinDays": 7 },
      "Targets": [
        { "Name": "nightly" },
        { "Name": "weekly", "MaxAgeHours": 170, "MinCount": 4, "MaxStorageMB": 20480 },
        { "Tag": "critical", "MaxAgeHours": 2, "StorageProfiles": ["offsite"] }
      ] } } }

RULES (per target, in each of its profiles)

  MaxAgeHours                the newest healthy completed backup (Completed, not found invalid) is at most this old
  MinCount                   at least this many restorable backups (Completed or PartiallyCompleted, not found invalid)
  MaxStorageMB               their archives take at most this many MB (1 MB = 1,048,576 bytes)
  MustBeValidatedWithinDays  a backup passed \`koan-backup validate\` within the last N days
  NoBackups                  (always) the profile holds backups of the target
  Unreachable, Unreadable    (always) each profile can be listed and its backup records read

  With no Targets, only the storage profiles are checked. When the result is unhealthy and
  Koan.Backup.Notifications has webhooks taking health.unhealthy, the event is sent (the run waits for delivery).

  Exit codes: 0 healthy, 1 unhealthy (one line per problem on stdout, how to fix each on stderr),
  2 usage or invalid configuration, 130 cancelled.`;

function ago(iso: string | null, now: number, unit: 'hours' | 'days'): string {
  if (iso === null) return 'none';
  const ms = now - Date.parse(iso);
  return `${(ms / (unit === 'hours' ? 3_600_000 : 86_400_000)).toFixed(1)} ${unit} ago`;
}

function checkLine(c: MonitorCheck, now: number): string {
  const who = c.scope === 'name' ? c.target : `tag ${c.target}`;
  return `  ${who} in ${c.storageProfile}: ${c.restorable} restorable of ${c.backups}, newest healthy ${ago(c.newestHealthyAt, now, 'hours')}, last validated ${ago(c.lastValidatedAt, now, 'days')}, ${formatBytes(c.sizeBytes)}`;
}

function subject(p: MonitorProblem): string {
  if (p.scope === 'profile') return `storage profile ${p.target}`;
  return `${p.scope === 'name' ? p.target : `tag ${p.target}`} in ${p.storageProfile}`;
}

function render(session: Session, result: MonitorResult): void {
  const now = Date.parse(result.checkedAt);
  const where = `profile${result.storageProfiles.length === 1 ? '' : 's'} ${result.storageProfiles.join(', ')}`;
  const watched = result.targets.length
    ? `${result.targets.length} target${result.targets.length === 1 ? '' : 's'} in ${where}`
    : `no targets; ${where}`;
  if (result.healthy) {
    session.print(`Healthy: ${watched}, checked ${formatTime(result.checkedAt)}`);
    for (const c of result.checks) session.print(checkLine(c, now));
  } else {
    const n = result.problems.length;
    session.print(`UNHEALTHY: ${n} problem${n === 1 ? '' : 's'} (${watched}, checked ${formatTime(result.checkedAt)})`);
    const width = Math.max(...result.problems.map((p) => p.check.length));
    for (const p of result.problems) session.print(`${p.check.padEnd(width)}  ${p.message}`);
    session.note('\nHow to fix:');
    for (const p of result.problems) session.note(`- ${subject(p)} (${p.check}): ${p.hint}`);
  }
  if (!result.targets.length)
    session.note(
      'Note: no backup is watched, only the storage profiles were checked. Add Koan.Backup.Monitor.Targets (see `koan-backup monitor --help`).',
    );
}

export default defineCliCommand({
  meta: {
    name: 'monitor',
    description:
      'Check the backups against the rules of Koan.Backup.Monitor (age, count, size, validation) in every storage profile: one line per problem, exit 1 when unhealthy',
  },
  args: {
    ...globalArgs,
    name: { type: 'string', description: 'Only this watched backup name (repeatable)', valueHint: 'name' },
    tag: { type: 'string', description: 'Only this watched tag (repeatable)', valueHint: 'tag' },
    profile: { type: 'string', description: 'Only this storage profile (repeatable)', valueHint: 'profile' },
    notify: {
      type: 'boolean',
      default: true,
      description: 'Send health.unhealthy to the webhooks of Koan.Backup.Notifications when unhealthy',
      negativeDescription: 'Send no notification (a check by hand)',
    },
  },
  examples: [
    '# Check everything Koan.Backup.Monitor watches (see CONFIGURATION below)',
    'koan-backup monitor',
    '# From cron: a webhook (Koan.Backup.Notifications) and exit 1 when something is wrong',
    '*/30 * * * *  cd /srv/app && koan-backup monitor --json > /var/log/koan-monitor.json',
    '# Only the nightly backups in the off-site profile, without notifying',
    'koan-backup monitor --name nightly --profile offsite --no-notify',
  ],
  details: DETAILS,
  async run(args, session, rawArgs) {
    const names = optionalList(rawArgs, 'name');
    const tags = optionalList(rawArgs, 'tag');
    const profiles = optionalList(rawArgs, 'profile');
    return withContext(session, args, async (context) => {
      const failures: NotificationFailure[] = [];
      const section = context.config.notifications;
      const notifications =
        args.notify !== false && section
          ? Notifications.fromConfig(section, {
              env: session.env,
              onFailure: (f) => failures.push(f),
              ...(session.io.signal ? { signal: session.io.signal } : {}),
            })
          : undefined;
      try {
        const result = await monitorBackups(context, context.config.monitor, {
          ...(names ? { names } : {}),
          ...(tags ? { tags } : {}),
          ...(profiles ? { storageProfiles: profiles } : {}),
          ...(session.io.signal ? { signal: session.io.signal } : {}),
          ...(notifications?.enabled ? { notify: notifications } : {}),
        });
        const delivered = result.eventId ? await notifications!.flush(DELIVERY_WAIT_MS) : undefined;
        const notification = result.eventId
          ? { eventId: result.eventId, delivered: delivered === true && !failures.length, failures }
          : undefined;
        if (session.json) session.printJson({ ...result, ...(notification ? { notification } : {}) });
        else {
          render(session, result);
          if (notification?.delivered) session.note(`Sent health.unhealthy (event ${notification.eventId}).`);
          for (const f of failures)
            session.note(`Warning: health.unhealthy to ${f.target} was not delivered: ${f.message}`);
          if (notification && !notification.delivered && !failures.length)
            session.note(
              `Warning: health.unhealthy (event ${notification.eventId}) was still being sent after ${DELIVERY_WAIT_MS / 1000} s; it was dropped.`,
            );
          if (!result.healthy && notifications?.enabled && !result.eventId)
            session.note(
              'Note: no webhook takes health.unhealthy events (Koan.Backup.Notifications.Webhooks.<name>.Events), so none was sent.',
            );
        }
        return result.healthy ? ExitCode.OK : ExitCode.FAILURE;
      } finally {
        await notifications?.close(1_000);
      }
    });
  },
});
