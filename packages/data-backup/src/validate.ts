import type { ZipReader } from './archive/index.js';
import type { LocatedBackup } from './catalog.js';
import { archiveHashProblem, isRestorable, openArchive } from './locate.js';
import type { BackupSidecar, ValidationResult } from './manifest.js';
import { type ProgressListener, ProgressTracker } from './progress.js';
import { type ArchiveContents, readContents, readFailure, type VerifyReport, verifyEntries } from './verify.js';

/** What {@link validateLocated} reads and reports with. */
export interface ValidateArchiveOptions {
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ProgressListener | undefined;
}

/**
 * Deep validation of a located backup: ZIP structure, the archive's SHA-256 against the sidecar, the manifest against
 * its schema, every entry's SHA-256 over the exact bytes, line counts, and every line parsed and decoded. A read that
 * fails (connection cut or 5xx past the retries, access denied, cancelled) throws its StorageError.
 */
export async function validateLocated(
  located: LocatedBackup,
  options: ValidateArchiveOptions,
  t0: number,
): Promise<ValidationResult> {
  const issues: string[] = [];
  const warnings: string[] = [];
  let checked = { checkedEntries: 0, checkedLines: 0 };
  const sidecar = located.sidecar;
  if (!isRestorable(sidecar))
    issues.push(
      `The backup has status ${sidecar.status}${sidecar.errorMessage ? ` (${sidecar.errorMessage})` : ''}: there is nothing to restore`,
    );
  else {
    try {
      const hashIssue = await archiveHashProblem(located, options.signal);
      if (hashIssue) issues.push(hashIssue);
      const reader = await openArchive(located, options.signal);
      try {
        const contents = await readContents(reader, sidecar);
        const report = await verifyWithProgress(reader, contents, sidecar, options);
        issues.push(...report.issues);
        warnings.push(...report.warnings);
        checked = { checkedEntries: report.checkedEntries, checkedLines: report.checkedLines };
      } finally {
        await reader.close();
      }
    } catch (e) {
      if (options.signal?.aborted) throw e;
      // A read that failed (connection cut, 503s past the retries, access denied) proves nothing about the
      // archive: throw instead of storing an "invalid" verdict that would mark a good backup Critical.
      const failure = readFailure(e);
      if (failure) throw failure;
      // The archive's size was already reported by the hash check above: not twice.
      const sizeAgain = (e as { details?: { reason?: unknown } }).details?.reason === 'size' && issues.length > 0;
      if (!sizeAgain) issues.push((e as Error).message);
    }
  }
  if (sidecar.status === 'PartiallyCompleted')
    warnings.push('The backup is partial: some entities failed during backup');
  const isValid = issues.length === 0;
  return {
    isValid,
    healthStatus: !isValid ? 'Critical' : warnings.length ? 'Warning' : 'Healthy',
    issues,
    warnings,
    validatedAt: new Date().toISOString(),
    durationMs: performance.now() - t0,
    ...checked,
  };
}

/** Every entry checked deeply, reporting progress per entity set. */
async function verifyWithProgress(
  reader: ZipReader,
  contents: ArchiveContents,
  sidecar: BackupSidecar,
  options: ValidateArchiveOptions,
): Promise<VerifyReport> {
  const progress = new ProgressTracker('validate', sidecar.name, options.onProgress);
  progress.overallTotalRecords = contents.manifest.verification.totalItemCount;
  // Phases as for backups and restores: start, then per entity set entity-start, progress..., entity-done
  // (with the entity's name, set and manifest count), then done; bytes count the entries checked so far.
  const byFile = new Map(contents.manifest.entities.map((e) => [e.storageFile, e]));
  const linesOf = new Map<string, number>();
  let current: { file: string; entity: string; set: string; records: number; totalRecords: number } | undefined;
  let bytesBefore = 0;
  const finish = () => {
    if (!current) return;
    bytesBefore += byFile.get(current.file)?.sizeBytes ?? 0;
    progress.bytes = bytesBefore;
    progress.emit('entity-done', current);
    current = undefined;
  };
  progress.emit('start');
  const report = await verifyEntries(reader, contents, {
    deep: true,
    ...(options.signal ? { signal: options.signal } : {}),
    onEntry: (file, lines, storedBytes) => {
      if (current?.file !== file) {
        finish();
        const item = byFile.get(file);
        current = {
          file,
          entity: item?.entityType ?? file,
          set: item?.set ?? '',
          records: 0,
          totalRecords: item?.itemCount ?? 0,
        };
        progress.emit('entity-start', current);
      }
      linesOf.set(file, lines);
      current.records = lines;
      // Uncompressed bytes of the entry in proportion to the stored bytes read (exact at its end).
      const item = byFile.get(file);
      const share = item && item.compressedSizeBytes > 0 ? Math.min(1, storedBytes / item.compressedSizeBytes) : 0;
      progress.bytes = bytesBefore + Math.round((item?.sizeBytes ?? 0) * share);
      progress.overallRecords = [...linesOf.values()].reduce((a, b) => a + b, 0);
      progress.emit('progress', current);
    },
  });
  finish();
  progress.emit('done');
  return report;
}
