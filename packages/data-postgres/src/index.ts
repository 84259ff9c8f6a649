/**
 * PostgreSQL data adapter for `@koan/data` (node-postgres): cursor streaming in key order, server-built
 * JSON Lines exports, COPY bulk imports, snapshot reads shared across connections, and introspection.
 */
export { createPostgresAdapter, PostgresAdapter, type PostgresSettings, provider } from './postgres-adapter.js';
export { POSTGRES_TYPE_MAPPING } from './type-mapping.js';
