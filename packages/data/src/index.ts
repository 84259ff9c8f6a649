export type {
  AdapterCapabilities,
  Consistency,
  DataAdapter,
  DataProvider,
  DataReader,
  DataRecord,
  DataWriter,
  ExportOptions,
  ImportMode,
  ImportOptions,
  ImportResult,
  KeyValue,
  StoreDescription,
  TransactionOptions,
} from './adapter.js';
export { createJsonFileAdapter, JsonFileAdapter, type JsonFileSettings } from './adapters/json-file.js';
export { createMemoryAdapter, MemoryAdapter } from './adapters/memory.js';
export {
  decodeRecord,
  decodeValue,
  encodeRecord,
  encodeRecordLine,
  encodeValue,
  normalizeDate,
  normalizeDatetime,
  normalizeRecord,
  normalizeValue,
} from './codec.js';
export {
  type DataConfig,
  dataConfigSchema,
  type LoadConfigOptions,
  type LoadedConfig,
  loadKoanConfig,
  parseConfigSection,
} from './config.js';
export { type DiscoverOptions, discoverEntities, type EntityInfo, introspectSources, warmup } from './discovery.js';
export {
  buildSchema,
  defineEntity,
  Entity,
  type EntityOptions,
  EntitySet,
  getEntity,
  type InputOf,
  type RecordOf,
  registeredEntities,
  registerSchema,
  unregisterEntity,
} from './entity.js';
export { abortError, abortedOr, ConfigError, DataError, isAbortError, KoanError, throwIfAborted } from './errors.js';
export {
  type AnyField,
  Field,
  type FieldSpec,
  type FieldsShape,
  type FieldType,
  type InferInput,
  type InferRecord,
  type JsonValue,
  t,
} from './fields.js';
export {
  compactJsonBytes,
  decodeArchiveLines,
  importEachBatch,
  type LineTarget,
  type LineTranscoder,
  lineTranscoder,
  parseLine,
  STREAM_PIECE_BYTES,
  scanCanonicalLine,
} from './line-transcoder.js';
export {
  configureData,
  DataRuntime,
  type DataRuntimeOptions,
  DEFAULT_SOURCES,
  getDataRuntime,
  runtimeOptionsFromConfig,
  type SourceConfig,
} from './runtime.js';
export {
  assertSetName,
  assertSingleKey,
  compareKeys,
  describeKey,
  type EntitySchema,
  entityNamesForTables,
  FIELD_NOTE_PREFIX,
  fieldFromNote,
  fieldNote,
  KEY_FIELD_TYPES,
  type KeyType,
  keyFieldsOf,
  keySpec,
  physicalName,
  ROOT_SET,
  setFromPhysicalName,
} from './schema.js';
