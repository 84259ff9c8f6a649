/**
 * `@koan/data-redis`: the Redis data adapter (ioredis). Records are archive-encoded JSON strings,
 * ordered and counted through a sorted-set index per entity set; TTLs travel through a `.ttl()` field.
 */
export { createRedisAdapter, provider, type RedisSettings } from './redis-adapter.js';
