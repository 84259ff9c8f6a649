import {
  ConfigError,
  type DataAdapter,
  DataError,
  type DataRecord,
  type EntitySchema,
  type FieldSpec,
  JsonText,
  type KeyValue,
} from '@koan/data';
import {
  type AdapterCapabilities,
  assertSetName,
  assertSingleKey,
  type Consistency,
  checkBatchBytes,
  type DataProvider,
  type DataReader,
  type DataWriter,
  decodeRecord,
  type ExportOptions,
  encodeRecordLine,
  type ImportOptions,
  type ImportResult,
  jsValueOf,
  normalizeDatetime,
  pagedRecords,
  type StoreDescription,
  throwIfAborted,
} from '@koan/data/adapter-kit';
import { Redis } from 'ioredis';

const PROVIDER = 'redis';

/** Settings of a Redis source. */
export interface RedisSettings {
  /** Connection URL. @default 'redis://127.0.0.1:6379' */
  readonly url?: string;
  /** First segment of every key the adapter writes. @default 'koan' */
  readonly keyPrefix?: string;
  /** Logical database; overrides the URL's `/db`. @default the URL's, else 0 */
  readonly db?: number;
  /** Used when the URL names no password (so the URL can sit in a file and the password in the environment). */
  readonly password?: string;
}

// Writes one batch atomically (a script runs alone on the server). Returns {inserted, updated, expired},
// or {-1, member} without writing anything when `insert` meets an existing (or repeated) key.
// KEYS: idx, exp, sets, record keys...  ARGV: mode, set, numericScores, then member, json, pxat per record.
const WRITE_BATCH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS - 3
local insert = ARGV[1] == 'insert'
local function expired(px) return px ~= '' and tonumber(px) <= now end
if insert then
  local seen = {}
  for i = 1, n do
    local b = 3 + (i - 1) * 3
    local member = ARGV[b + 1]
    if not expired(ARGV[b + 3]) then
      if seen[member] or redis.call('EXISTS', KEYS[3 + i]) == 1 then return {-1, member} end
      seen[member] = true
    end
  end
end
local inserted, updated, gone = 0, 0, 0
for i = 1, n do
  local b = 3 + (i - 1) * 3
  local member, json, px = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local key = KEYS[3 + i]
  if expired(px) then
    gone = gone + 1
    if not insert then
      redis.call('DEL', key)
      redis.call('ZREM', KEYS[1], member)
      redis.call('ZREM', KEYS[2], member)
    end
  else
    local existed = redis.call('EXISTS', key)
    if px == '' then
      redis.call('SET', key, json)
      redis.call('ZREM', KEYS[2], member)
    else
      redis.call('SET', key, json, 'PXAT', px)
      redis.call('ZADD', KEYS[2], px, member)
    end
    if ARGV[3] == '1' then redis.call('ZADD', KEYS[1], member, member) else redis.call('ZADD', KEYS[1], 0, member) end
    if existed == 1 then updated = updated + 1 else inserted = inserted + 1 end
  end
end
redis.call('SADD', KEYS[3], ARGV[2])
return {inserted, updated, gone}
`;

// Drops index entries of records Redis has expired. KEYS: idx, exp. ARGV: record key prefix, limit.
const PRUNE_EXPIRED = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  if redis.call('EXISTS', ARGV[1] .. m) == 0 then redis.call('ZREM', KEYS[1], m) end
  redis.call('ZREM', KEYS[2], m)
end
return #due
`;

interface ScriptCommands {
  koanWriteBatch(numKeys: number, ...args: (string | number)[]): Promise<[number, number | string, number?]>;
  koanPruneExpired(idx: string, exp: string, prefix: string, limit: number): Promise<number>;
}

const PAGE = 1000;

/** The Redis keys of one entity set. */
interface SetKeys {
  /** `<prefix>:<table>:<set>`: the set's location. */
  readonly base: string;
  /** Prefix of record keys: `<base>:r:`. */
  readonly record: string;
  /** Sorted set of every key: the count and the order of streaming. */
  readonly idx: string;
  /** Sorted set of keys with an expiry, scored by expiry (Unix ms). */
  readonly exp: string;
  /** Set of the entity's set names. */
  readonly sets: string;
}

/**
 * Creates a Redis data adapter. Records are JSON strings (the archive encoding of `@koan/data`'s codec),
 * indexed by a sorted set per entity set for counting and key-ordered streaming. Reads are fuzzy
 * (no point-in-time view); each `importBatch` is atomic, `transaction()` is not.
 *
 * @example
 * const adapter = createRedisAdapter({ url: 'redis://cache:6379', keyPrefix: 'shop' });
 * await adapter.init();
 */
export function createRedisAdapter(settings: RedisSettings = {}): DataAdapter {
  return new RedisAdapter(settings);
}

class RedisAdapter implements DataAdapter {
  readonly provider = PROVIDER;
  readonly capabilities: AdapterCapabilities = Object.freeze({
    transactions: false,
    snapshotReads: false,
    nativeUpsert: true,
    bulkLoad: false,
    orderedStreaming: true,
    sets: true,
    introspection: false,
    ttl: true,
    nonFiniteNumbers: true,
  });
  readonly #settings: Readonly<
    Required<Omit<RedisSettings, 'db' | 'password'>> & Pick<RedisSettings, 'db' | 'password'>
  >;
  #client: (Redis & ScriptCommands) | undefined;

  constructor(settings: RedisSettings) {
    this.#settings = Object.freeze({
      url: settings.url ?? 'redis://127.0.0.1:6379',
      keyPrefix: settings.keyPrefix ?? 'koan',
      ...(settings.db === undefined ? {} : { db: settings.db }),
      ...(settings.password === undefined ? {} : { password: settings.password }),
    });
  }

  get #redis(): Redis & ScriptCommands {
    if (!this.#client)
      throw new DataError('NOT_INITIALIZED', '[koan] [redis] adapter used before init() or after close()');
    return this.#client;
  }

  #lastError: Error | undefined;

  async init(): Promise<void> {
    if (this.#client) return;
    // ioredis fills options from the URL first, so a password in the URL wins over this one.
    const client = new Redis(this.#settings.url, {
      ...(this.#settings.password === undefined ? {} : { password: this.#settings.password }),
      lazyConnect: true,
      maxRetriesPerRequest: 2,
      ...(this.#settings.db === undefined ? {} : { db: this.#settings.db }),
    });
    // Without a listener ioredis prints "Unhandled error event" for every failed (re)connect; failures
    // surface as rejected commands instead, and the last one is kept for the error message.
    client.on('error', (e: Error) => {
      this.#lastError = e;
    });
    client.defineCommand('koanWriteBatch', { lua: WRITE_BATCH });
    client.defineCommand('koanPruneExpired', { lua: PRUNE_EXPIRED, numberOfKeys: 2 });
    try {
      await client.connect();
    } catch (e) {
      client.disconnect();
      throw new DataError(
        'CONNECTION_FAILED',
        `[koan] [redis] cannot connect to ${redactUrl(this.#settings.url)}: ${this.#lastError?.message ?? (e as Error).message}. Is Redis running there? Fix Settings.Url of this source.`,
        {
          cause: e,
        },
      );
    }
    this.#client = client as Redis & ScriptCommands;
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (client) await client.quit().catch(() => client.disconnect());
  }

  /** Every operation starts here: an entity not keyed by one string, uuid or integer field is refused by name. */
  #keys(entity: EntitySchema, set: string): SetKeys {
    assertSingleKey(entity, 'redis');
    assertSetName(set);
    const table = `${this.#settings.keyPrefix}:${entity.table ?? entity.name}`;
    const base = `${table}:${set}`;
    return { base, record: `${base}:r:`, idx: `${base}:idx`, exp: `${base}:exp`, sets: `${table}:sets` };
  }

  async ensureEntity(entity: EntitySchema, set: string): Promise<void> {
    assertSingleKey(entity, 'redis');
    await this.#redis.sadd(this.#keys(entity, set).sets, set);
  }

  async listSets(entity: EntitySchema): Promise<string[]> {
    const sets = await this.#redis.smembers(this.#keys(entity, 'root').sets);
    return sets.sort();
  }

  async count(entity: EntitySchema, set: string): Promise<number> {
    const keys = this.#keys(entity, set);
    await this.#pruneExpired(keys);
    return this.#redis.zcard(keys.idx);
  }

  async *exportEntity(entity: EntitySchema, set: string, options: ExportOptions = {}): AsyncIterable<DataRecord[]> {
    const keys = this.#keys(entity, set);
    const size = Math.max(1, options.batchSize ?? 1000);
    const budget = checkBatchBytes(options.batchBytes);
    const numeric = entity.keyType === 'integer';
    await this.#pruneExpired(keys);
    let last: string | undefined;
    // Each page asks for the records that fill what is left of the batch's byte budget.
    const read = async (limit: number) => {
      const members = numeric
        ? await this.#redis.zrangebyscore(keys.idx, last === undefined ? '-inf' : `(${last}`, '+inf', 'LIMIT', 0, limit)
        : await this.#redis.zrangebylex(keys.idx, last === undefined ? '-' : `(${last}`, '+', 'LIMIT', 0, limit);
      last = members[members.length - 1] ?? last;
      const rows = members.length ? await this.#read(entity, keys, members) : [];
      return { rows, end: members.length < limit };
    };
    yield* pagedRecords(read, (r) => r, size, budget, options.signal);
  }

  async get(entity: EntitySchema, set: string, key: KeyValue): Promise<DataRecord | undefined> {
    const [record] = await this.#read(entity, this.#keys(entity, set), [String(key)]);
    return record;
  }

  async getMany(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<DataRecord[]> {
    if (keys.length === 0) return [];
    return this.#read(entity, this.#keys(entity, set), keys.map(String));
  }

  /** Records that exist, in order, in one round trip: MGET plus, for an entity with a TTL field, PEXPIRETIME of each. */
  async #read(entity: EntitySchema, keys: SetKeys, members: readonly string[]): Promise<DataRecord[]> {
    const ttlField = ttlFieldOf(entity);
    const recordKeys = members.map((m) => keys.record + m);
    const pipeline = this.#redis.pipeline().mget(recordKeys);
    if (ttlField) for (const k of recordKeys) pipeline.pexpiretime(k);
    const replies = (await pipeline.exec()) ?? [];
    const [mgetErr, values] = replies[0] ?? [new Error('no reply')];
    if (mgetErr)
      throw new DataError('READ_FAILED', `[koan] [redis] MGET failed: ${mgetErr.message}`, { cause: mgetErr });
    const out: DataRecord[] = [];
    (values as (string | null)[]).forEach((json, i) => {
      if (json === null) return;
      const { record } = decodeRecord(entity, JSON.parse(json) as Record<string, unknown>, 'nested');
      if (ttlField) applyStoreExpiry(record, ttlField, replies[i + 1]?.[1] as number | undefined);
      out.push(record);
    });
    return out;
  }

  async importBatch(
    entity: EntitySchema,
    set: string,
    records: readonly DataRecord[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    throwIfAborted(options.signal);
    const keys = this.#keys(entity, set);
    if (records.length === 0) {
      await this.ensureEntity(entity, set);
      return { inserted: 0, updated: 0 };
    }
    const ttlField = ttlFieldOf(entity)?.[0];
    const jsonFields = Object.entries(entity.fields)
      .filter(([, spec]) => spec.type === 'json')
      .map(([name]) => name);
    const recordKeys: string[] = [];
    const args: string[] = [options.mode, set, entity.keyType === 'integer' ? '1' : '0'];
    // Every record is encoded (and checked) before the batch is sent: a value refused leaves nothing written.
    for (const record of records) {
      const key = record[entity.key];
      if (typeof key !== 'string' && typeof key !== 'number')
        throw new DataError('MISSING_FIELD', `${entity.name}.${entity.key} is required (it is the key)`, {
          details: { entity: entity.name },
        });
      const member = String(key);
      recordKeys.push(keys.record + member);
      args.push(
        member,
        encodeRecordLine(entity, jsValues(entity, record, jsonFields, key), 'nested'),
        ttlField ? expiryMs(record[ttlField]) : '',
      );
    }
    const [inserted, updated, expired] = await this.#redis.koanWriteBatch(
      3 + recordKeys.length,
      keys.idx,
      keys.exp,
      keys.sets,
      ...recordKeys,
      ...args,
    );
    if (inserted === -1)
      throw new DataError(
        'DUPLICATE_KEY',
        `${entity.name}: a record with key ${JSON.stringify(updated)} already exists in set "${set}"; nothing of this batch was written`,
        {
          details: { entity: entity.name, set, key: updated },
        },
      );
    return { inserted, updated: updated as number, ...(expired ? { expired: expired as number } : {}) };
  }

  async clear(entity: EntitySchema, set: string): Promise<number> {
    const keys = this.#keys(entity, set);
    let removed = 0;
    // Each round removes the first page, so the loop ends once the index is empty (bounded by its size).
    for (let round = 0, total = await this.#redis.zcard(keys.idx); round <= total / PAGE + 1; round++) {
      const members = await this.#redis.zrange(keys.idx, '0', String(PAGE - 1));
      if (members.length === 0) break;
      removed += await this.#delete(keys, members);
    }
    await this.#redis.del(keys.idx, keys.exp);
    return removed;
  }

  async remove(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<number> {
    if (keys.length === 0) return 0;
    return this.#delete(this.#keys(entity, set), keys.map(String));
  }

  async #delete(keys: SetKeys, members: readonly string[]): Promise<number> {
    const replies = await this.#redis
      .multi()
      .del(...members.map((m) => keys.record + m))
      .zrem(keys.idx, ...members)
      .zrem(keys.exp, ...members)
      .exec();
    const [err, deleted] = replies?.[0] ?? [new Error('transaction discarded')];
    if (err) throw new DataError('WRITE_FAILED', `[koan] [redis] DEL failed: ${err.message}`, { cause: err });
    return deleted as number;
  }

  async #pruneExpired(keys: SetKeys): Promise<void> {
    const total = await this.#redis.zcard(keys.exp);
    for (let round = 0; round <= total / PAGE; round++) {
      if ((await this.#redis.koanPruneExpired(keys.idx, keys.exp, keys.record, PAGE)) < PAGE) return;
    }
  }

  async describe(entity: EntitySchema, set: string): Promise<StoreDescription> {
    const keys = this.#keys(entity, set);
    const [isMember, records] = await Promise.all([this.#redis.sismember(keys.sets, set), this.count(entity, set)]);
    const ttlField = ttlFieldOf(entity)?.[0];
    return {
      provider: PROVIDER,
      location: keys.base,
      exists: isMember === 1 || records > 0,
      columns: Object.entries(entity.fields).map(([name, spec]) => ({
        name,
        storeType: `json:${spec.type}`,
        nullable: spec.nullable || spec.optional,
      })),
      primaryKey: [entity.key],
      extra: {
        keyScheme: {
          record: `${keys.record}<key>`,
          encoding: 'string: archive JSON line (@koan/data codec)',
          index: `${keys.idx} (sorted set; ${entity.keyType === 'integer' ? 'score = key' : 'score 0, members in byte order'})`,
          expiries: `${keys.exp} (sorted set; score = expiry, Unix ms)`,
          sets: `${keys.sets} (set of set names)`,
        },
        ttl: ttlField ? { field: ttlField, scheme: 'PXAT from the field on write; PEXPIRETIME on read' } : null,
        records,
      },
    };
  }

  async readSnapshot<T>(fn: (reader: DataReader & { readonly consistency: Consistency }) => Promise<T>): Promise<T> {
    return fn({
      consistency: 'fuzzy',
      exportEntity: (entity, set, options) => this.exportEntity(entity, set, options),
      count: (entity, set) => this.count(entity, set),
    });
  }

  /** Runs `fn` directly: Redis has no multi-batch rollback. Each `importBatch` stays atomic on its own. */
  async transaction<T>(fn: (writer: DataWriter) => Promise<T>): Promise<T> {
    return fn(this);
  }
}

/**
 * The record with its json fields as JavaScript values (records are stored as JSON lines of values): a `JsonText`
 * JavaScript cannot hold exactly (a number beyond a double, a key twice, JSON null) is refused naming the entity,
 * field and key.
 */
function jsValues(entity: EntitySchema, record: DataRecord, jsonFields: readonly string[], key: KeyValue): DataRecord {
  if (!jsonFields.some((f) => record[f] instanceof JsonText)) return record;
  const out = { ...record };
  for (const f of jsonFields)
    if (out[f] instanceof JsonText) out[f] = jsValueOf(out[f], `${entity.name}.${f} of record ${JSON.stringify(key)}`);
  return out;
}

function ttlFieldOf(entity: EntitySchema): [string, FieldSpec] | undefined {
  for (const entry of Object.entries(entity.fields)) if (entry[1].ttl && entry[1].type === 'datetime') return entry;
  return undefined;
}

/** PXAT argument for a TTL field value: Unix ms (sub-millisecond digits truncated), or '' for none. */
function expiryMs(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = normalizeDatetime(value);
  const ms = text === undefined ? Number.NaN : Date.parse(`${text.slice(0, 23)}Z`);
  if (Number.isNaN(ms))
    throw new DataError('INVALID_VALUE', `TTL field value ${JSON.stringify(value)} is not a datetime`);
  return String(ms);
}

/**
 * The key's expiry is the truth (it may have been changed with EXPIRE or PERSIST): the stored field
 * is kept when it names the same millisecond (it keeps its microseconds), else replaced by it.
 */
function applyStoreExpiry(record: DataRecord, [name, spec]: [string, FieldSpec], expireAt: number | undefined): void {
  if (expireAt === undefined) return;
  if (expireAt < 0) {
    if (spec.optional) delete record[name];
    else if (spec.nullable) record[name] = null;
    return;
  }
  const stored = record[name];
  if (typeof stored === 'string' && expiryMs(stored) === String(expireAt)) return;
  record[name] = normalizeDatetime(new Date(expireAt));
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

function settingsFrom(raw: Record<string, unknown>): RedisSettings {
  const { url, keyPrefix, db, password } = raw;
  if (url !== undefined && typeof url !== 'string')
    throw new ConfigError('INVALID_SETTING', '[koan] [redis] `url` must be a string such as "redis://127.0.0.1:6379"');
  if (keyPrefix !== undefined && (typeof keyPrefix !== 'string' || keyPrefix === ''))
    throw new ConfigError('INVALID_SETTING', '[koan] [redis] `keyPrefix` must be a non-empty string');
  if (db !== undefined && (typeof db !== 'number' || !Number.isInteger(db) || db < 0))
    throw new ConfigError('INVALID_SETTING', '[koan] [redis] `db` must be a non-negative integer');
  if (password !== undefined && typeof password !== 'string')
    throw new ConfigError('INVALID_SETTING', '[koan] [redis] `password` must be a string');
  return {
    ...(password === undefined ? {} : { password }),
    ...(url === undefined ? {} : { url }),
    ...(keyPrefix === undefined ? {} : { keyPrefix }),
    ...(db === undefined ? {} : { db }),
  };
}

/** The `redis` provider: settings `{ url?, keyPrefix?, db?, password? }`. */
export const provider: DataProvider = Object.freeze({
  name: PROVIDER,
  settings: { url: 'text', keyPrefix: 'text', db: 'number', password: 'text' } as const,
  create: (settings: Record<string, unknown>) => createRedisAdapter(settingsFrom(settings)),
});
