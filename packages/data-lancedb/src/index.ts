/**
 * `@koan/data-lancedb`: the LanceDB data adapter. One table per entity set, vectors stored as
 * `FixedSizeList<Float32>` bit for bit, reads pinned to table versions.
 */
export {
  arrowSchema,
  createLanceDbAdapter,
  type LanceDbSettings,
  lanceTableName,
  provider,
} from './lancedb-adapter.js';
