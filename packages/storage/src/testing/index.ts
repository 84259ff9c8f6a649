/** Test helpers for storage drivers: the shared conformance suite and pattern bodies. */
export {
  describeStorageConformance,
  digest,
  expectNothingLeft,
  patternBody,
  patternChunk,
  readAll,
  type StorageConformanceOptions,
} from './conformance.js';
export {
  type BlackHole,
  closedLoopbackPort,
  startBlackHole,
  unreachableAzureSettings,
  unreachableS3Settings,
} from './unreachable.js';
