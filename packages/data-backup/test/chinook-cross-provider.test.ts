/**
 * Cross-provider restore of an existing database: Chinook is loaded into SQLite, PostgreSQL and MariaDB with each
 * dialect's own script, introspected and backed up whole (11 tables, PlaylistTrack's composite key included), then
 * restored into each *other* provider's fresh database and compared row by row with the source.
 *
 * Equality is taken in the neutral (archive) representation: decimals are equal when numerically exact-equal
 * ("0.99" = "0.990", see `exactDecimal`), datetimes are the canonical microsecond UTC text, strings are compared
 * code unit by code unit (byte-identical UTF-8), integers exactly. See docs/type-mapping.md.
 */
import { join } from 'node:path';
import {
  type DataAdapter,
  type DataRecord,
  type EntitySchema,
  type FieldSpec,
  registeredEntities,
  unregisterEntity,
} from '@koan/data';
import { keyFieldsOf } from '@koan/data/adapter-kit';
import { sharedDatasetsDir } from '@koan/data/testing';
import { backupAllEntities, restoreAllEntities } from '@koan/data-backup';
import { archivedEntity } from '@koan/data-backup/plan';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';
import {
  createScratch,
  DIALECTS,
  type Dialect,
  probeDialect,
  readScript,
  type ScratchDatabase,
} from './scratch-databases.js';

const SCRIPTS: Readonly<Record<Dialect, string>> = {
  sqlite: 'Chinook_Sqlite.sql',
  postgres: 'Chinook_PostgreSql.sql',
  mariadb: 'Chinook_MySql.sql',
};

/** Rows per table in every dialect's script (the sqlite names; PostgreSQL's are snake_case). */
const CHINOOK_ROWS: Readonly<Record<string, number>> = {
  album: 347,
  artist: 275,
  customer: 59,
  employee: 8,
  genre: 25,
  invoice: 412,
  invoiceline: 2240,
  mediatype: 5,
  playlist: 18,
  playlisttrack: 8715,
  track: 3503,
};

const datasets = sharedDatasetsDir();
const unavailable = Object.fromEntries(
  await Promise.all(DIALECTS.map(async (d) => [d, await probeDialect(d)] as const)),
) as Record<Dialect, string | undefined>;

/**
 * The exact decimal a text denotes, in one spelling: no exponent, no leading zeros, no trailing fraction zeros,
 * no sign on zero. Two decimal texts are numerically exact-equal when these are identical.
 */
export function exactDecimal(text: string): string {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw new Error(`not a decimal: ${JSON.stringify(text)}`);
  const [, sign, int = '', frac = '', exp = '0'] = m;
  const digits = int + frac;
  const point = int.length + Number(exp);
  const padded =
    point < 0
      ? '0'.repeat(-point) + digits
      : point > digits.length
        ? digits + '0'.repeat(point - digits.length)
        : digits;
  const at = Math.max(point, 0);
  const whole = padded.slice(0, at).replace(/^0+/, '') || '0';
  const fraction = padded.slice(at).replace(/0+$/, '');
  const body = fraction ? `${whole}.${fraction}` : whole;
  return /^[0.]+$/.test(body) ? '0' : `${sign === '-' ? '-' : ''}${body}`;
}

/** One value in its neutral form for comparison. */
function neutral(spec: FieldSpec, value: unknown): unknown {
  if (value === null || value === undefined) return value ?? null;
  switch (spec.type) {
    case 'decimal':
      return `decimal:${exactDecimal(String(value))}`;
    case 'datetime':
      if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(String(value)))
        throw new Error(`datetime not canonical: ${String(value)}`);
      return value;
    case 'bigint':
      return String(value);
    case 'binary':
      return Buffer.from(value as Uint8Array).toString('base64');
    default:
      return value;
  }
}

async function readAll(adapter: DataAdapter, schema: EntitySchema): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const batch of adapter.exportEntity(schema, 'root', { batchSize: 1000 })) out.push(...batch);
  return out;
}

/** Differences between two tables read in key order, as readable lines (the first 5). */
function differences(schema: EntitySchema, source: readonly DataRecord[], target: readonly DataRecord[]): string[] {
  const out: string[] = [];
  if (source.length !== target.length)
    out.push(`${schema.name}: ${source.length} source rows, ${target.length} restored`);
  const keys = keyFieldsOf(schema);
  for (let i = 0; i < Math.min(source.length, target.length) && out.length < 5; i++) {
    const a = source[i]!;
    const b = target[i]!;
    for (const [field, spec] of Object.entries(schema.fields)) {
      const x = neutral(spec, a[field]);
      const y = neutral(spec, b[field]);
      if (x !== y)
        out.push(
          `${schema.name} ${keys.map((k) => a[k]).join('/')} .${field}: source ${JSON.stringify(x)}, restored ${JSON.stringify(y)}`,
        );
    }
  }
  return out;
}

function forgetIntrospected(): void {
  for (const e of registeredEntities()) if (e.schema.origin === 'introspected') unregisterEntity(e.schema.name);
}

describe.each(DIALECTS)('Chinook backed up from %s', (from) => {
  const skipReason = !datasets ? '../shared/datasets is absent' : unavailable[from];
  const scratches: ScratchDatabase[] = [];
  let env: Awaited<ReturnType<typeof makeContext>> | undefined;
  /** The source's tables as introspected, with their rows in key order. */
  const source = new Map<string, { schema: EntitySchema; rows: DataRecord[] }>();
  let manifestEntities: { entityType: string; itemCount: number; status: string; keyType: string }[] = [];

  beforeAll(async () => {
    if (skipReason) return;
    const script = await readScript(join(datasets!, 'chinook', SCRIPTS[from]));
    const db = await createScratch(from, `chinook_${from.slice(0, 2)}`, script);
    scratches.push(db);
    env = await makeContext({ src: db.source });
    forgetIntrospected();
    const result = await backupAllEntities(env.context, `chinook-${from}`, { introspect: true });
    manifestEntities = result.entities.map((e) => ({
      entityType: e.entityType,
      itemCount: e.itemCount,
      status: e.status,
      keyType: e.keyType,
    }));
    const adapter = await env.context.runtime.adapter('src');
    for (const entity of registeredEntities())
      if (entity.schema.source === 'src')
        source.set(entity.schema.name, { schema: entity.schema, rows: await readAll(adapter, entity.schema) });
    forgetIntrospected();
  }, 300_000);

  afterAll(async () => {
    forgetIntrospected();
    await env?.cleanup();
    for (const db of scratches) await db.drop().catch(() => undefined);
  });

  it('introspects and backs up all 11 tables, PlaylistTrack with its composite key', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    expect(manifestEntities).toHaveLength(11);
    expect(source.size).toBe(11);
    for (const e of manifestEntities) {
      expect(e.status).toBe('Completed');
      expect(e.itemCount).toBe(CHINOOK_ROWS[e.entityType.replaceAll('_', '').toLowerCase()]);
    }
    const playlistTrack = [...source.values()].find((s) => /^playlist_?track$/i.test(s.schema.name))!.schema;
    expect(keyFieldsOf(playlistTrack)).toHaveLength(2);
    // The backup wrote nothing to the source: backing it up again finds the same tables with the same rows.
    forgetIntrospected();
    const again = await backupAllEntities(env!.context, `chinook-${from}-again`, { introspect: true });
    forgetIntrospected();
    expect(again.entities.map((e) => [e.entityType, e.itemCount, e.status]).sort()).toEqual(
      manifestEntities.map((e) => [e.entityType, e.itemCount, e.status]).sort(),
    );
  });

  it.for<Dialect>(DIALECTS.filter((d) => d !== from))(
    `restores into %s: same row counts, every value identical`,
    { timeout: 300_000 },
    async (to, ctx) => {
      if (skipReason) return ctx.skip(skipReason);
      if (unavailable[to]) return ctx.skip(unavailable[to]);
      const db = await createScratch(to, `xp_${from.slice(0, 2)}_${to.slice(0, 2)}`);
      scratches.push(db);
      // A second application environment: the target database only, reading the same backup storage.
      const target = await makeContext(
        { tgt: db.source },
        { profiles: { local: { provider: 'local', settings: { root: join(env!.dir, 'backups') } } } },
      );
      try {
        forgetIntrospected();
        const report = await restoreAllEntities(target.context, `chinook-${from}`, { targetSource: 'tgt' });
        expect(report.entities.map((e) => e.status)).toEqual(Array(11).fill('Restored'));
        const adapter = await target.context.runtime.adapter('tgt');
        const problems: string[] = [];
        let compared = 0;
        expect(source.size).toBe(11);
        // A restore registers nothing process-wide: the restored tables are read as the archived schema in the target.
        const restoredAs = (schema: EntitySchema) => archivedEntity(schema, 'tgt', target.context.runtime);
        for (const [name, { schema, rows }] of source) {
          if (!report.entities.some((e) => e.entityType === name && e.status === 'Restored')) {
            problems.push(`${name}: not restored`);
            continue;
          }
          const restored = restoredAs(schema);
          expect(keyFieldsOf(restored.schema)).toEqual(keyFieldsOf(schema));
          expect(await adapter.count(restored.schema, 'root')).toBe(rows.length);
          problems.push(...differences(schema, rows, await readAll(adapter, restored.schema)));
          compared += rows.length;
        }
        expect(problems).toEqual([]);
        expect(compared).toBe(Object.values(CHINOOK_ROWS).reduce((a, b) => a + b, 0));
        // Types mapped sensibly on the target: the invoice total stays an exact decimal(10,2) where the target has one.
        const invoice = restoredAs([...source.values()].find((s) => /^invoice$/i.test(s.schema.name))!.schema).schema;
        const total = Object.keys(invoice.fields).find((f) => /^total$/i.test(f))!;
        const storeType = (await adapter.describe(invoice, 'root')).columns.find((c) => c.name === total)?.storeType;
        expect(storeType).toMatch(to === 'sqlite' ? /^DECIMAL_TEXT$/ : /^(numeric|decimal)\(10,\s*2\)$/i);
        // The restored database is itself an existing database: with no code at hand, introspection finds the
        // tables the restore created under their entity names, and backs them up whole.
        forgetIntrospected();
        const onward = await backupAllEntities(target.context, `chinook-${from}-${to}-onward`, { introspect: true });
        expect(onward.entities.map((e) => [e.entityType, e.itemCount, e.status]).sort()).toEqual(
          manifestEntities.map((e) => [e.entityType, e.itemCount, 'Completed']).sort(),
        );
      } finally {
        forgetIntrospected();
        await target.cleanup();
      }
    },
  );
});

describe('exactDecimal: numeric-exact equality of decimal texts', () => {
  it('ignores scale padding, leading zeros, exponents and the sign of zero', () => {
    expect(exactDecimal('0.99')).toBe(exactDecimal('0.990'));
    expect(exactDecimal('2')).toBe(exactDecimal('2.00'));
    expect(exactDecimal('-0.00')).toBe('0');
    expect(exactDecimal('1e-7')).toBe('0.0000001');
    expect(exactDecimal('12.5E2')).toBe('1250');
    expect(exactDecimal('007.10')).toBe('7.1');
    expect(exactDecimal('0.1')).not.toBe(exactDecimal('0.10000000000000001'));
  });
});
