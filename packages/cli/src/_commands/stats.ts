import { BackupDiscoveryService } from '@koan/data-backup';
import { globalArgs, optionalList } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { withContext } from '../_context.js';
import { formatBytes, formatTime, renderPairs } from '../_format.js';

export default defineCliCommand({
  meta: {
    name: 'stats',
    description: 'Catalog statistics: counts, sizes, health, and breakdowns by status, provider and profile',
  },
  args: {
    ...globalArgs,
    profile: { type: 'string', description: 'Only these storage profiles (repeatable or comma list)' },
  },
  examples: [
    'koan-backup stats',
    '# Alert when backups need attention',
    'koan-backup stats --json | jq -e ".backupsRequiringAttention == 0"',
  ],
  async run(args, session, rawArgs) {
    const profiles = optionalList(rawArgs, 'profile');
    return withContext(session, args, async (context) => {
      const stats = await new BackupDiscoveryService(context).getCatalogStats(
        profiles ? { storageProfiles: profiles } : {},
      );
      if (session.json) {
        session.printJson(stats);
        return 0;
      }
      const counts = (m: Record<string, number>) =>
        Object.entries(m)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || '-';
      const brief = (b: { name: string; id: string; createdAt: string } | undefined) =>
        b ? `${b.name} ${formatTime(b.createdAt)} (${b.id})` : '-';
      session.print(
        renderPairs([
          ['backups', String(stats.totalBackups)],
          ['total size', formatBytes(stats.totalSizeBytes)],
          ['healthy', String(stats.healthyBackups)],
          [
            'need attention',
            `${stats.backupsRequiringAttention} (failed, partial, invalid, or not validated for ${stats.attentionAfterDays} days)`,
          ],
          ['by status', counts(stats.byStatus)],
          ['by health', counts(stats.byHealth)],
          ['by provider', counts(stats.byProvider)],
          ['by profile', counts(stats.byStorageProfile)],
          ['oldest', brief(stats.oldestBackup)],
          ['newest', brief(stats.newestBackup)],
        ]),
      );
      for (const u of stats.unavailableProfiles)
        session.note(
          `Warning: storage profile ${u.profile} could not be listed; its backups are not counted. ${u.code}: ${u.message}`,
        );
      return 0;
    });
  },
});
