import { createHash } from 'node:crypto';
import type { EntitySchema } from '@koan/data';
import {
  decodeRecord,
  jsonEncodingOf,
  keyFieldsOf,
  type NativeStructure,
  type StoreDescription,
} from '@koan/data/adapter-kit';
import { StorageError } from '@koan/storage';
import { hashEntry, type LinesResult, type ZipReader } from './archive/index.js';
import { BackupError } from './errors.js';
import {
  type BackupManifest,
  type BackupSidecar,
  CHECKSUMS_ENTRY,
  type ChecksumsFile,
  checksumsSchema,
  type EntityManifest,
  MANIFEST_ENTRY,
  manifestSchema,
  SCHEMAS_ENTRY,
} from './manifest.js';

/** Storage codes that describe the read (network, permissions, configuration, cancellation), not the stored bytes. */
const READ_FAILURES = new Set(['TRANSIENT', 'IO', 'ACCESS_DENIED', 'BUCKET_NOT_FOUND', 'CONFIG', 'ABORTED']);

/**
 * The storage error behind `error` (walking `cause`, since the ZIP reader wraps source errors) when it is a failure
 * of the read itself: a cut connection says nothing about the archive, so validation must not report the archive as
 * damaged because of it. `NOT_FOUND` and `INVALID_RANGE` are about the stored object and are not read failures.
 */
export function readFailure(error: unknown): StorageError | undefined {
  let e: unknown = error;
  for (let depth = 0; e && depth < 8; depth++) {
    if (e instanceof StorageError) return READ_FAILURES.has(e.code) ? e : undefined;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export interface SchemaSnapshot {
  readonly entityType: string;
  readonly set: string;
  readonly source: string;
  readonly provider: string;
  readonly schema: EntitySchema;
  readonly store: StoreDescription;
}

/** The native structure (DDL) of one archived source, for same-provider restores. */
export interface SourceStructure {
  readonly source: string;
  readonly structure: NativeStructure;
}

export interface ArchiveContents {
  readonly manifest: BackupManifest;
  readonly checksums: ChecksumsFile;
  readonly snapshots: readonly SchemaSnapshot[] | undefined;
  /** The native structure of each archived source whose adapter captures one (archives of format 2 and later). */
  readonly structures: readonly SourceStructure[];
}

export interface VerifyReport {
  readonly issues: string[];
  readonly warnings: string[];
  checkedEntries: number;
  checkedLines: number;
}

async function readJson(reader: ZipReader, name: string): Promise<{ value: unknown; bytes: Buffer }> {
  const bytes = await reader.readBuffer(name);
  try {
    return { value: JSON.parse(bytes.toString('utf8')), bytes };
  } catch (e) {
    throw new BackupError('ARCHIVE_CORRUPT', `${name} is not valid JSON: ${(e as Error).message}`, {
      cause: e,
      details: { entry: name },
    });
  }
}

/** Manifest fields a published sidecar may hold differently: its own timing, and the profile a copy moved it to. */
const SIDECAR_OWN = new Set(['timings', 'storageProfile']);

/** The manifest fields on which `sidecar` and the archive's `manifest` differ (key order aside). */
function sidecarDifferences(sidecar: BackupSidecar, manifest: BackupManifest): string[] {
  const canonical = (v: unknown): string =>
    JSON.stringify(v, (_k, x: unknown) =>
      x && typeof x === 'object' && !Array.isArray(x)
        ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : x,
    ) ?? 'undefined';
  const fields = new Set([...Object.keys(manifest), ...Object.keys(manifestSchema.shape)]);
  return [...fields].filter(
    (f) =>
      !SIDECAR_OWN.has(f) &&
      canonical((sidecar as Record<string, unknown>)[f]) !== canonical((manifest as Record<string, unknown>)[f]),
  );
}

/**
 * Reads and cross-checks the archive's own metadata: manifest against its schema and the sidecar,
 * checksums.json against the manifest's overall checksum, schema snapshots against their checksum.
 * Throws `ARCHIVE_CORRUPT` naming what is wrong.
 */
export async function readContents(reader: ZipReader, sidecar?: BackupSidecar): Promise<ArchiveContents> {
  for (const name of [MANIFEST_ENTRY, CHECKSUMS_ENTRY])
    if (!reader.entry(name))
      throw new BackupError('ARCHIVE_CORRUPT', `The archive has no ${name}: it is not a complete Koan backup.`, {
        details: { entry: name },
      });
  const m = await readJson(reader, MANIFEST_ENTRY);
  const parsed = manifestSchema.safeParse(m.value);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new BackupError(
      'ARCHIVE_CORRUPT',
      `manifest.json does not match the manifest schema (formats 1 and 2) at ${i?.path.join('.') || '(root)'}: ${i?.message}`,
      {
        details: { entry: MANIFEST_ENTRY },
      },
    );
  }
  const manifest = parsed.data;
  if (sidecar && sidecar.id !== manifest.id)
    throw new BackupError(
      'ARCHIVE_CORRUPT',
      `The archive's manifest is backup ${manifest.id}, but its sidecar says ${sidecar.id}.`,
    );
  if (sidecar) {
    const differ = sidecarDifferences(sidecar, manifest);
    if (differ.length)
      throw new BackupError(
        'ARCHIVE_CORRUPT',
        `The sidecar of backup ${manifest.id} disagrees with the archive's manifest on ${differ.join(', ')}: one of them was altered after the backup (the catalog lists what the sidecar says).`,
        { details: { entry: MANIFEST_ENTRY, fields: differ } },
      );
  }
  const c = await readJson(reader, CHECKSUMS_ENTRY);
  const checksumsDigest = createHash('sha256').update(c.bytes).digest('hex');
  if (checksumsDigest !== manifest.verification.overallChecksum)
    throw new BackupError(
      'ARCHIVE_CORRUPT',
      `${CHECKSUMS_ENTRY} does not match the manifest's overall checksum: the archive was altered.`,
      {
        details: { entry: CHECKSUMS_ENTRY },
      },
    );
  const checksums = checksumsSchema.parse(c.value);
  let snapshots: SchemaSnapshot[] | undefined;
  let structures: SourceStructure[] = [];
  if (manifest.options.includeSchemaSnapshot) {
    const s = await readJson(reader, SCHEMAS_ENTRY);
    const digest = createHash('sha256').update(s.bytes).digest('hex');
    if (digest !== checksums.files[SCHEMAS_ENTRY])
      throw new BackupError(
        'ARCHIVE_CORRUPT',
        `${SCHEMAS_ENTRY} does not match its checksum: the archive was altered.`,
        { details: { entry: SCHEMAS_ENTRY } },
      );
    const file = s.value as { entities: SchemaSnapshot[]; structures?: SourceStructure[] };
    snapshots = file.entities;
    structures = file.structures ?? [];
  }
  return { manifest, checksums, snapshots, structures };
}

/** The manifest's `storedHash` (archives that record it) against the SHA-256 of the entry's stored bytes. */
function storedProblem(item: EntityManifest, sha256: string, issues: string[]): void {
  if (item.storedHash !== undefined && item.storedHash !== sha256)
    issues.push(
      `${item.storageFile}: SHA-256 of the stored (compressed) bytes is ${sha256.slice(0, 12)}…, the manifest records ${item.storedHash.slice(0, 12)}…`,
    );
}

/**
 * Checks entity entries: SHA-256 of the exact bytes against checksums.json and the manifest, of the stored bytes
 * against the manifest's `storedHash`, line counts against item counts, and (deep) that every line parses and
 * decodes with the snapshot schema. Reports every problem; never stops at the first.
 */
export async function verifyEntries(
  reader: ZipReader,
  contents: ArchiveContents,
  options: {
    deep: boolean;
    only?: ReadonlySet<string>;
    signal?: AbortSignal;
    /** After each batch of an entry: its lines so far, and how many of its stored (compressed) bytes were read. */
    onEntry?: (entry: string, lines: number, storedBytes: number) => void;
  },
): Promise<VerifyReport> {
  const report: VerifyReport = { issues: [], warnings: [], checkedEntries: 0, checkedLines: 0 };
  const { manifest, checksums, snapshots } = contents;
  const json = jsonEncodingOf(manifest.formatVersion);
  const listed = new Set(Object.keys(checksums.files));
  for (const entry of reader.entries) {
    if (entry.name === MANIFEST_ENTRY || entry.name === CHECKSUMS_ENTRY) continue;
    if (!listed.has(entry.name))
      report.issues.push(`${entry.name}: present in the archive but not in ${CHECKSUMS_ENTRY}`);
  }
  for (const e of manifest.entities) {
    if (e.status !== 'Completed') {
      report.warnings.push(
        `${e.entityType}@${e.set}: failed during backup (${e.errorMessage ?? 'no message'}); it is not in the archive`,
      );
      continue;
    }
    if (options.only && !options.only.has(e.storageFile)) continue;
    const expected = checksums.files[e.storageFile];
    if (!reader.entry(e.storageFile)) {
      report.issues.push(`${e.storageFile}: missing from the archive`);
      continue;
    }
    if (expected !== e.contentHash)
      report.issues.push(`${e.storageFile}: manifest contentHash and ${CHECKSUMS_ENTRY} disagree`);
    try {
      if (options.deep) {
        const snapshot = snapshots?.find((s) => s.entityType === e.entityType && s.set === e.set);
        let lines = 0;
        let done: LinesResult | undefined;
        const stored = createHash('sha256');
        let storedBytes = 0;
        for await (const batch of reader.lines(e.storageFile, {
          // Lines are checked one by one: small batches keep wide rows few and short-lived (8 MiB batches of 100 KB
          // rows peaked at ~200 MB RSS, 1 MiB at ~115 MB), whatever budget restores use.
          batchSize: 2000,
          maxBatchBytes: 1024 * 1024,
          ...(options.signal ? { signal: options.signal } : {}),
          onStored: (chunk) => {
            stored.update(chunk);
            storedBytes += chunk.length;
          },
          onDone: (d) => {
            done = d;
          },
        })) {
          for (let i = 0; i < batch.lines.length; i++) {
            const text = batch.lines[i]!;
            const lineNo = batch.firstLine + i;
            let value: unknown;
            try {
              value = JSON.parse(text);
            } catch (err) {
              report.issues.push(`${e.storageFile} line ${lineNo}: not valid JSON (${(err as Error).message})`);
              continue;
            }
            if (value === null || typeof value !== 'object' || Array.isArray(value)) {
              report.issues.push(`${e.storageFile} line ${lineNo}: not a JSON object`);
              continue;
            }
            if (snapshot) {
              try {
                const { unknown } = decodeRecord(snapshot.schema, value as Record<string, unknown>, json);
                if (unknown.length)
                  report.issues.push(
                    `${e.storageFile} line ${lineNo}: fields not in the schema snapshot: ${unknown.join(', ')}`,
                  );
                for (const key of keyFieldsOf(snapshot.schema))
                  if ((value as Record<string, unknown>)[key] === undefined)
                    report.issues.push(`${e.storageFile} line ${lineNo}: no key field "${key}"`);
              } catch (err) {
                report.issues.push(`${e.storageFile} line ${lineNo}: ${(err as Error).message}`);
              }
            }
            if (report.issues.length > 100) break;
          }
          lines += batch.lines.length;
          options.onEntry?.(e.storageFile, lines, storedBytes);
        }
        if (done?.missingFinalNewline)
          report.issues.push(`${e.storageFile}: the last line is not terminated (truncated entry)`);
        if (done && done.sha256 !== expected)
          report.issues.push(
            `${e.storageFile}: SHA-256 mismatch (archive ${done.sha256?.slice(0, 12)}…, recorded ${expected?.slice(0, 12)}…)`,
          );
        if (done) storedProblem(e, stored.digest('hex'), report.issues);
        if (lines !== e.itemCount)
          report.issues.push(`${e.storageFile}: ${lines} lines, but the manifest records ${e.itemCount} items`);
        report.checkedLines += lines;
      } else {
        const h = await hashEntry(reader, e.storageFile, options.signal);
        if (h.sha256 !== expected)
          report.issues.push(
            `${e.storageFile}: SHA-256 mismatch (archive ${h.sha256.slice(0, 12)}…, recorded ${expected?.slice(0, 12)}…)`,
          );
        storedProblem(e, h.storedSha256, report.issues);
        if (h.lines !== e.itemCount)
          report.issues.push(`${e.storageFile}: ${h.lines} lines, but the manifest records ${e.itemCount} items`);
        report.checkedLines += h.lines;
        options.onEntry?.(e.storageFile, h.lines, e.compressedSizeBytes);
      }
    } catch (err) {
      if (options.signal?.aborted) throw err;
      const failure = readFailure(err);
      if (failure) throw failure; // the read failed, not the entry: no verdict
      report.issues.push(`${e.storageFile}: ${(err as Error).message}`);
    }
    report.checkedEntries++;
  }
  if (manifest.options.includeSchemaSnapshot && !snapshots?.length && manifest.entities.length)
    report.issues.push(`${SCHEMAS_ENTRY}: empty, but the manifest lists entities`);
  return report;
}
