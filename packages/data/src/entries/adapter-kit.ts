/**
 * `@koan/data/adapter-kit`: what an adapter author needs besides the main entry, and what the backup engine uses to
 * drive adapters: the adapter contract's types, schemas and keys, the line format `koan-jsonl` and its codec, the
 * JSON-lines transcoder for bulk loads, batches bounded in bytes, exact JSON text, and cancellation helpers.
 */
export type {
  AdapterCapabilities,
  Consistency,
  DataProvider,
  DataReader,
  DataWriter,
  ExportOptions,
  ImportMode,
  ImportOptions,
  ImportResult,
  IntrospectionResult,
  NativeStructure,
  NotDataObject,
  SettingKind,
  SkippedTable,
  StoreDescription,
  StructureFacet,
  StructureObject,
  StructureTarget,
  TransactionOptions,
} from '../adapter.js';
export {
  boundLineChunks,
  byteBatches,
  checkBatchBytes,
  cutLineChunk,
  DEFAULT_BATCH_BYTES,
  formatByteSize,
  linePieces,
  MAX_BATCH_BYTES,
  PageSizer,
  pagedRecords,
  parseByteSize,
  recordBytes,
  rowBytes,
  transcodedPieces,
} from '../batch-bytes.js';
export {
  decodeRecord,
  decodeValue,
  encodeRecord,
  encodeRecordLine,
  encodeValue,
  isArchiveDate,
  isArchiveDatetime,
  isSpecialDate,
  isSpecialDatetime,
  isZeroDate,
  normalizeDate,
  normalizeDatetime,
  normalizeRecord,
  normalizeValue,
} from '../codec.js';
export { buildSchema } from '../entity.js';
export { abortError, abortedOr, isAbortError, throwIfAborted } from '../errors.js';
export type { AnyField, InferInput, InferRecord, JsonValue } from '../fields.js';
export { jsonTextLoss, jsonTextOf, jsValueOf, sameNumber } from '../json-text.js';
export {
  type JsonEncoding,
  jsonEncodingOf,
  LINE_FORMAT,
  LINE_FORMAT_ID,
  LINE_FORMAT_NAME,
} from '../line-format.js';
export {
  decodeArchiveLines,
  importEachBatch,
  type LineTarget,
  type LineTranscoder,
  lineTranscoder,
  STREAM_PIECE_BYTES,
  scanCanonicalLine,
} from '../line-transcoder.js';
export {
  assertSetName,
  assertSingleKey,
  compareKeyValues,
  describeKey,
  entityNamesForTables,
  FIELD_NOTE_PREFIX,
  fieldFromNote,
  fieldNote,
  KEY_FIELD_TYPES,
  KEY_TYPES,
  type KeyType,
  keyFieldsOf,
  keySpec,
  physicalName,
  ROOT_SET,
  setFromPhysicalName,
} from '../schema.js';
