/**
 * `@koan/data`: entities and their fields, the data runtime and its sources, discovery, the errors, the built-in
 * memory and JSON-file adapters. What adapter authors (and the backup engine) need besides lives in
 * `@koan/data/adapter-kit`; reading `koan.config.json` in `@koan/data/config`; the shared test suites in
 * `@koan/data/testing`.
 */
export type { DataAdapter } from './adapter.js';
export { createJsonFileAdapter, JsonFileAdapter, type JsonFileSettings } from './adapters/json-file.js';
export { createMemoryAdapter, MemoryAdapter } from './adapters/memory.js';
export {
  type DiscoverOptions,
  discoverEntities,
  type EntityInfo,
  introspectSources,
  type SourcesIntrospection,
  warmup,
} from './discovery.js';
export {
  defineEntity,
  Entity,
  type EntityOptions,
  EntitySet,
  getEntity,
  type InputOf,
  type RecordOf,
  registeredEntities,
  unregisterEntity,
} from './entity.js';
export { ConfigError, DataError, KoanError } from './errors.js';
export { Field, type FieldSpec, type FieldsShape, type FieldType, t } from './fields.js';
export { JsonText } from './json-text.js';
export {
  configureData,
  DataRuntime,
  type DataRuntimeOptions,
  getDataRuntime,
  type SourceConfig,
} from './runtime.js';
export type { EntitySchema } from './schema.js';
export type { DataRecord, KeyValue } from './types.js';
