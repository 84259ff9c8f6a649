/**
 * ZIP archive container for backups: a streaming ZIP64-capable writer, temp-file spools for
 * compressing entries concurrently, and a verifying reader over any random-access source.
 */
export { EntrySpool, type EntrySpoolOptions } from './entry-spool.js';
export { bufferSource, fileSource, storageSource } from './sources.js';
export type { EntrySourceOptions, EntryStats, RandomAccessSource, SpooledEntry, ZipEntryInfo } from './types.js';
export { hashEntry, type LinesOptions, type LinesResult, ZipReader } from './zip-reader.js';
export { ZipWriter, type ZipWriterOptions } from './zip-writer.js';
