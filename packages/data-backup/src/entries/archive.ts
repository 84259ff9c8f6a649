/**
 * `@koan/data-backup/archive`: the backup archive itself: the ZIP container (a streaming ZIP64 writer, a verifying
 * reader over any random-access source, temp-file spools), the manifest and sidecar with their entries and checksums,
 * reading and verifying an archive's contents, and archive files outside the catalog (inspect, adopt, delete
 * a damaged one).
 */
export * from '../archive/index.js';
export {
  type AdoptReceipt,
  type ArchiveRef,
  type ArchiveState,
  adoptArchive,
  deleteDamagedArchive,
  inspectArchive,
  locateArchive,
} from '../archives.js';
export { openArchive } from '../locate.js';
export {
  type BackupSidecar,
  CHECKSUMS_ENTRY,
  type EntityManifest,
  entityEntryName,
  FORMAT_VERSION,
  MANIFEST_ENTRY,
  manifestSchema,
  type OmittedObject,
  SCHEMAS_ENTRY,
  sidecarSchema,
  type ValidationResult,
} from '../manifest.js';
export { readContents, type SchemaSnapshot, type SourceStructure, verifyEntries } from '../verify.js';
