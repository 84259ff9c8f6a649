/**
 * The Slack-compatible body of a webhook of format `slack`: `{ text, blocks }`, which Slack incoming webhooks (and
 * Mattermost, Rocket.Chat, Discord's /slack endpoint) accept. `text` is the one-line summary notifications and
 * clients without blocks show; `blocks` add the facts. Texts are escaped for Slack's mrkdwn and lists are cut to
 * stay well inside Slack's limits (3000 characters a section, 10 fields).
 */
import type { NotificationEvent, NotificationType } from './events.js';

export interface SlackMessage {
  readonly text: string;
  readonly blocks: readonly Record<string, unknown>[];
}

interface Summary {
  readonly title: string;
  readonly fields: readonly (readonly [string, string])[];
  readonly details?: readonly string[];
}

const LIST_LIMIT = 10;
/** Slack refuses a section text over 3000 characters and a field over 2000. */
const SECTION_LIMIT = 2900;
const FIELD_LIMIT = 1900;

/** Escapes the three characters Slack's mrkdwn gives meaning to. */
const mrkdwn = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** At most LIST_LIMIT lines, then how many more. */
function capped(lines: readonly string[]): string[] {
  if (lines.length <= LIST_LIMIT) return [...lines];
  return [...lines.slice(0, LIST_LIMIT), `... and ${lines.length - LIST_LIMIT} more`];
}

const failedSets = (failed: readonly { entity: string; set: string; error: string }[]) =>
  capped(failed.map((f) => `• ${mrkdwn(`${f.entity}@${f.set}`)}: ${mrkdwn(f.error)}`));

const summaries: { [T in NotificationType]: (data: NotificationEvent<T>['data']) => Summary } = {
  'backup.succeeded': (d) => ({
    title: `:white_check_mark: Backup *${mrkdwn(d.name)}* completed`,
    fields: [
      ['Records', d.totalItemCount.toLocaleString('en-US')],
      ['Archive', bytes(d.archiveSizeBytes)],
      ['Duration', duration(d.durationMs)],
      ['Profile', mrkdwn(d.storageProfile)],
      ...(d.schedule ? [['Schedule', mrkdwn(d.schedule)] as const] : []),
    ],
  }),
  'backup.failed': (d) => ({
    title: `:x: Backup *${mrkdwn(d.name)}* ${d.status === 'PartiallyCompleted' ? 'partially completed' : d.status === 'Cancelled' ? 'was cancelled' : 'failed'}`,
    fields: [
      ['Error', `${mrkdwn(d.error.code)}: ${mrkdwn(d.error.message)}`],
      ...(d.storageProfile ? [['Profile', mrkdwn(d.storageProfile)] as const] : []),
      ...(d.schedule ? [['Schedule', mrkdwn(d.schedule)] as const] : []),
    ],
    details: failedSets(d.failed),
  }),
  'restore.succeeded': (d) => ({
    title: `:white_check_mark: Restore of *${mrkdwn(d.backupName)}* completed`,
    fields: [
      ['Records', d.totalRecords.toLocaleString('en-US')],
      ['Entity sets', String(d.entitySets)],
      ['Duration', duration(d.durationMs)],
      ['Profile', mrkdwn(d.storageProfile)],
    ],
  }),
  'restore.failed': (d) => ({
    title: `:x: Restore${d.backupName ? ` of *${mrkdwn(d.backupName)}*` : ''} ${d.status === 'PartiallyCompleted' ? 'partially completed' : d.status === 'Cancelled' ? 'was cancelled' : 'failed'}`,
    fields: [['Error', `${mrkdwn(d.error.code)}: ${mrkdwn(d.error.message)}`]],
    details: failedSets(d.failed),
  }),
  'health.unhealthy': (d) => ({
    title: `:warning: Backups are unhealthy: ${d.problems.length} problem${d.problems.length === 1 ? '' : 's'}`,
    fields: [],
    details: capped(
      d.problems.map((p) => `• ${p.scope} *${mrkdwn(p.target)}* (${mrkdwn(p.check)}): ${mrkdwn(p.message)}`),
    ),
  }),
  'drill.failed': (d) => ({
    title: `:x: Restore drill of *${mrkdwn(d.backupName)}* failed`,
    fields: [
      ...(d.error ? [['Error', `${mrkdwn(d.error.code)}: ${mrkdwn(d.error.message)}`] as const] : []),
      ...(d.sandbox ? [['Sandbox', mrkdwn(d.sandbox)] as const] : []),
      ['Duration', duration(d.durationMs)],
    ],
    details: capped(
      d.mismatches.map(
        (m) =>
          `• ${mrkdwn(`${m.entity}@${m.set}`)}: ${m.actualCount} records restored, ${m.expectedCount} in the manifest${m.expectedHash !== m.actualHash ? ', content hash differs' : ''}`,
      ),
    ),
  }),
  'retention.applied': (d) => ({
    title: `:wastebasket: Retention deleted ${d.deleted.length} backup${d.deleted.length === 1 ? '' : 's'} and kept ${d.kept}`,
    fields: d.unavailableProfiles.length ? [['Not listed', mrkdwn(d.unavailableProfiles.join(', '))]] : [],
    details: capped(d.deleted.map((b) => `• ${mrkdwn(b.name)} of ${b.createdAt} (${mrkdwn(b.storageProfile)})`)),
  }),
};

const clip = (text: string, limit = SECTION_LIMIT) => (text.length > limit ? `${text.slice(0, limit)}...` : text);

/** The Slack message of `event`. */
export function slackMessage(event: NotificationEvent): SlackMessage {
  const render = summaries[event.type] as (data: NotificationEvent['data']) => Summary;
  const summary = render(event.data);
  const where = [event.source.app, event.source.host].filter(Boolean).map((s) => mrkdwn(s!));
  const blocks: Record<string, unknown>[] = [{ type: 'section', text: { type: 'mrkdwn', text: clip(summary.title) } }];
  if (summary.fields.length)
    blocks.push({
      type: 'section',
      fields: summary.fields
        .slice(0, 10)
        .map(([label, value]) => ({ type: 'mrkdwn', text: clip(`*${label}*\n${value}`, FIELD_LIMIT) })),
    });
  if (summary.details?.length)
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: clip(summary.details.join('\n')) } });
  blocks.push({
    type: 'context',
    elements: [{ type: 'mrkdwn', text: `${event.type} · ${where.join(' · ')} · ${event.timestamp}` }],
  });
  // `text` is plain: Slack shows it in notifications, where mrkdwn markers would show as they are.
  return { text: summary.title.replace(/^:[a-z_]+: /, '').replace(/\*/g, ''), blocks };
}
