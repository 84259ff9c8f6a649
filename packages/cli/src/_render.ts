import type { BackupInfo, EntityRestoreReport, RestoreReport } from '@koan/data-backup';
import type { BackupSidecar, EntityManifest, OmittedObject, ZipReader } from '@koan/data-backup/archive';
import { formatBytes, formatCount, formatDuration, formatTime, percent, renderPairs, renderTable } from './_format.js';

export function entityTable(entities: readonly EntityManifest[], indent = ''): string {
  return renderTable(
    entities,
    [
      { header: 'ENTITY', value: (e) => e.entityType },
      { header: 'SET', value: (e) => e.set },
      { header: 'PROVIDER', value: (e) => `${e.provider} (${e.source})` },
      { header: 'ITEMS', value: (e) => formatCount(e.itemCount), align: 'right' },
      { header: 'SIZE', value: (e) => formatBytes(e.sizeBytes), align: 'right' },
      { header: 'COMPRESSED', value: (e) => formatBytes(e.compressedSizeBytes), align: 'right' },
      { header: 'CONSISTENCY', value: (e) => e.consistency },
      { header: 'STATUS', value: (e) => (e.errorMessage ? `${e.status}: ${e.errorMessage}` : e.status) },
    ],
    indent,
  );
}

export function manifestSummary(
  s: BackupSidecar,
  extra: readonly (readonly [string, string])[] = [],
  indent = '  ',
): string {
  const completed = s.entities.filter((e) => e.status === 'Completed');
  const compressed = completed.reduce((n, e) => n + e.compressedSizeBytes, 0);
  const pairs: [string, string][] = [
    ['name', s.name],
    ['id', s.id],
    ['status', s.errorMessage ? `${s.status} (${s.errorMessage})` : s.status],
    [
      'created',
      `${formatTime(s.createdAt)}${s.completedAt ? `  (took ${formatDuration(Date.parse(s.completedAt) - Date.parse(s.createdAt))})` : ''}`,
    ],
    ['profile', s.storageProfile],
  ];
  if (s.description) pairs.push(['description', s.description]);
  if (s.tags.length) pairs.push(['tags', s.tags.join(', ')]);
  pairs.push(
    [
      'entities',
      `${new Set(s.entities.map((e) => e.entityType)).size} (${s.entities.length} entity sets, ${completed.length} completed)`,
    ],
    ['items', formatCount(s.verification.totalItemCount)],
    ['data size', `${formatBytes(s.verification.totalSizeBytes)} uncompressed, ${formatBytes(compressed)} compressed`],
  );
  if (s.archive)
    pairs.push([
      'archive',
      `${s.archive.key} (${formatBytes(s.archive.sizeBytes)}, sha256 ${s.archive.sha256.slice(0, 16)}…)`,
    ]);
  if (s.sources.length)
    pairs.push(['sources', s.sources.map((x) => `${x.name} (${x.provider}, ${x.consistency})`).join(', ')]);
  pairs.push([
    'validated',
    s.validation ? `${formatTime(s.validation.validatedAt)} ${s.validation.isValid ? 'valid' : 'INVALID'}` : 'never',
  ]);
  pairs.push(...extra.map(([k, v]) => [k, v] as [string, string]));
  return renderPairs(pairs, indent);
}

export function catalogTable(backups: readonly BackupInfo[]): string {
  return renderTable(backups, [
    { header: 'NAME', value: (b) => b.name },
    { header: 'ID', value: (b) => b.id },
    { header: 'CREATED', value: (b) => formatTime(b.createdAt) },
    { header: 'STATUS', value: (b) => b.status },
    { header: 'HEALTH', value: (b) => b.healthStatus },
    { header: 'ENTITIES', value: (b) => String(b.entityTypes.length), align: 'right' },
    { header: 'ITEMS', value: (b) => formatCount(b.itemCount), align: 'right' },
    { header: 'SIZE', value: (b) => formatBytes(b.sizeBytes), align: 'right' },
    { header: 'PROFILE', value: (b) => b.storageProfile },
  ]);
}

export function restoreTable(entities: readonly EntityRestoreReport[], indent = ''): string {
  return renderTable(
    entities,
    [
      { header: 'ENTITY', value: (e) => e.entityType },
      { header: 'SET', value: (e) => (e.set === e.targetSet ? e.set : `${e.set} -> ${e.targetSet}`) },
      { header: 'PROVIDER', value: (e) => `${e.provider} (${e.source})` },
      { header: 'STATUS', value: (e) => e.status },
      { header: 'INSERTED', value: (e) => formatCount(e.inserted), align: 'right' },
      { header: 'UPDATED', value: (e) => formatCount(e.updated), align: 'right' },
      { header: 'REMOVED', value: (e) => formatCount(e.removed), align: 'right' },
      { header: 'SKIPPED', value: (e) => formatCount(e.skipped), align: 'right' },
      { header: 'TIME', value: (e) => formatDuration(e.durationMs), align: 'right' },
    ],
    indent,
  );
}

/** The first words of a restore's summary, by its overall status. */
const RESTORE_HEADLINE: Readonly<Record<RestoreReport['status'], string>> = {
  Completed: 'Restored',
  PartiallyCompleted: 'Partially restored',
  Failed: 'Restore FAILED for',
  DryRun: 'Dry run of restore',
};

/** Why the restore did not write every archived value of an entity set, one line each (or none). */
export function droppedNotes(e: EntityRestoreReport): string[] {
  const missing = e.missingColumns ?? [];
  const schema = e.droppedFields.filter((f) => !missing.includes(f));
  return [
    ...(missing.length
      ? [
          `${e.entityType}@${e.set}: the existing table has no column for ${missing.join(', ')}: ${missing.length > 1 ? 'their' : 'its'} archived values were not restored (--lenient)`,
        ]
      : []),
    ...(schema.length ? [`${e.entityType}: dropped fields not in the current schema: ${schema.join(', ')}`] : []),
  ];
}

export function restoreSummary(report: RestoreReport): string {
  const failed = report.entities.filter((e) => e.status === 'Failed').length;
  const absent = report.notInArchive?.length ?? 0;
  const total = report.entities.length;
  const why = [
    ...(failed ? [`${failed} of ${total} entity sets ${report.dryRun ? 'would fail' : 'failed'}`] : []),
    ...(absent
      ? [
          `${failed ? absent : `${absent} of ${total} entity sets`} not in the archive: the backup is ${report.backupStatus}`,
        ]
      : []),
  ];
  const lines = [
    `${RESTORE_HEADLINE[report.status]} ${report.backupName} (${report.backupId}) from profile ${report.storageProfile}: ${formatCount(report.totalRecords)} records in ${formatDuration(report.durationMs)}${report.validated ? ', archive validated first' : ''}`,
    `status: ${report.status}${why.length ? ` (${why.join('; ')})` : ''}`,
    '',
    restoreTable(report.entities),
  ];
  for (const e of report.entities) {
    for (const note of droppedNotes(e)) lines.push(`note: ${note}`);
    if (e.error) lines.push(`note: ${e.entityType}@${e.set}: ${e.error}`);
  }
  for (const { source, tables } of report.createdTables)
    lines.push(`created from the archived structure in ${source}: ${tables.join(', ')}`);
  if (report.dryRun) lines.push('', 'Nothing was written (dry run). Run again without --dry-run to restore.');
  return lines.join('\n');
}

/** What a backup leaves out, one line per object, with why (inspect). */
export function omittedTable(omitted: readonly OmittedObject[], indent = ''): string {
  return renderTable(
    omitted,
    [
      { header: 'SOURCE', value: (o) => o.source },
      { header: 'NAME', value: (o) => o.name },
      { header: 'KIND', value: (o) => o.kind },
      { header: 'WHY', value: (o) => o.reason },
    ],
    indent,
  );
}

/** One line after a backup: how many objects of the sources it does not hold, by kind, and where to see them. */
export function omittedSummary(omitted: readonly OmittedObject[], id: string): string {
  const kinds = new Map<string, number>();
  for (const o of omitted) kinds.set(o.kind, (kinds.get(o.kind) ?? 0) + 1);
  const byKind = [...kinds].map(([kind, n]) => `${kind}: ${n}`).join(', ');
  return `Not in this backup: ${omitted.length} object${omitted.length === 1 ? '' : 's'} of the sources (${byKind}), each named with why by \`koan-backup inspect ${id}\`.`;
}

export interface ArchiveEntry {
  readonly name: string;
  readonly uncompressedSize: number;
  readonly compressedSize: number;
  readonly method: 'stored' | 'deflate';
}

/** An `unzip -l`-style listing: length, compressed size, ratio, method, name, with totals. */
export function archiveListing(entries: readonly ArchiveEntry[], indent = ''): string {
  const total = entries.reduce((n, e) => n + e.uncompressedSize, 0);
  const compressed = entries.reduce((n, e) => n + e.compressedSize, 0);
  const rows = [
    ...entries,
    { name: `${entries.length} files`, uncompressedSize: total, compressedSize: compressed, method: '' as const },
  ];
  return renderTable(
    rows,
    [
      { header: 'Length', value: (e) => String(e.uncompressedSize), align: 'right' },
      { header: 'Compressed', value: (e) => String(e.compressedSize), align: 'right' },
      {
        header: 'Ratio',
        value: (e) => (e.uncompressedSize ? percent(e.uncompressedSize - e.compressedSize, e.uncompressedSize) : '-'),
        align: 'right',
      },
      { header: 'Method', value: (e) => e.method },
      { header: 'Name', value: (e) => e.name },
    ],
    indent,
  );
}

export function archiveEntries(reader: ZipReader): ArchiveEntry[] {
  return reader.entries.map((e) => ({
    name: e.name,
    uncompressedSize: e.uncompressedSize,
    compressedSize: e.compressedSize,
    method: e.method === 8 ? 'deflate' : 'stored',
  }));
}

/**
 * A titled list of at most `max` lines, then how many more there are: a damaged archive can have thousands of issues
 * (`--json` carries every one).
 */
export function boundedList(title: string, items: readonly string[], max = 20): string {
  const more = items.length - max;
  return [
    `${title} (${items.length}):`,
    ...items.slice(0, max).map((i) => `  - ${i}`),
    ...(more > 0 ? [`  ... and ${more} more (--json lists every one)`] : []),
  ].join('\n');
}
