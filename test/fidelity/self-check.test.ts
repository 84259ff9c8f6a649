/**
 * The suite's own judgement, checked without any server: canonical values (so "identical" means identical and a
 * changed value is never taken for the same one) and the row comparison on two SQLite files.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { canon, exactDecimal, type Raw } from './lib/canon.js';
import { tablesOf } from './lib/catalog.js';
import { compareValues } from './lib/compare.js';
import { createSqlite, dropAll } from './lib/scratch.js';

const text = (value: string): Raw => ({ form: 'text', value });

describe('canonical values', () => {
  it('decimals: numerically exact, not by spelling', () => {
    expect(exactDecimal('1.10')).toBe(exactDecimal('1.1'));
    expect(exactDecimal('-0.00')).toBe('0');
    expect(exactDecimal('1e20')).toBe('100000000000000000000');
    expect(exactDecimal('0.1')).not.toBe(exactDecimal('0.10000000000000001'));
    expect(canon('decimal', text('NaN'))).toBe('NaN');
    expect(canon('money', text('-$92,233,720,368,547,758.08'))).toBe('-92233720368547758.08');
  });

  it('datetimes: PostgreSQL BC and year 10000+, MariaDB zero dates, the archive form and offsets agree', () => {
    expect(canon('timestamp', text('0044-03-15 12:00:00+00 BC'))).toBe('-000043-03-15T12:00:00.000000Z');
    expect(canon('timestamp', text('-000043-03-15T12:00:00.000000Z'))).toBe('-000043-03-15T12:00:00.000000Z');
    expect(canon('timestamp', text('10000-01-01 00:00:00+00'))).toBe(
      canon('timestamp', text('+010000-01-01T00:00:00.000000Z')),
    );
    expect(canon('timestamp', text('2024-00-15 10:00:00'))).toBe('+002024-00-15T10:00:00.000000Z');
    expect(canon('timestamp', text('2024-03-31 01:30:00.5+02'))).toBe('+002024-03-30T23:30:00.500000Z');
    expect(canon('timestamp', text('infinity'))).toBe('infinity');
    expect(canon('timestamp', text('2024-05-01 10:00:00.123456'))).not.toBe(
      canon('timestamp', text('2024-05-01 10:00:00.123')),
    );
    expect(canon('date', text('0044-03-15 BC'))).toBe('-000043-03-15');
    expect(canon('date', text('2024-05-01 00:00:01'))).toMatch(/^\?/);
  });

  it('floats: FLOAT is the same float32 whatever its spelling; 6 significant digits are not', () => {
    expect(canon('float4', text('0.1'))).toBe(canon('float4', text('0.10000000149011612')));
    expect(canon('float4', text('16777200'))).not.toBe(canon('float4', text('16777216')));
    expect(canon('float8', text('0.1'))).not.toBe(canon('float8', text('0.10000000149011612')));
    expect(canon('float8', text('-0'))).toBe('-0');
    expect(canon('float8', { form: 'hex', value: '000000000000f87f' })).toBe('NaN');
  });

  it('arrays: PostgreSQL literals and JSON arrays compare element by element, bounds included', () => {
    expect(canon('array-num', text('{1,NULL,3}'))).toBe(canon('array-num', text('[1,null,3]')));
    expect(canon('array-num', text('{{1,2},{3,4}}'))).toBe(canon('array-num', text('[[1,2],[3,4]]')));
    expect(canon('array-num', text('[0:2]={7,8,9}'))).not.toBe(canon('array-num', text('[7,8,9]')));
    expect(canon('array-text', text('{"a,b",NULL,"NULL","c\\"d"}'))).toBe(
      canon('array-text', text('["a,b",null,"NULL","c\\"d"]')),
    );
    expect(canon('array-text', text('{1}'))).not.toBe(canon('array-text', text('[1]')));
    expect(canon('array-num', text('{12345678901234567890.123456789}'))).toBe(
      canon('array-num', text('[12345678901234567890.123456789]')),
    );
  });

  it('json is its exact text; integers, booleans, bits and binary compare as values', () => {
    expect(canon('json', text('{"b":1,"a":2}'))).not.toBe(canon('json', text('{"a": 2, "b": 1}')));
    expect(canon('json', text('null'))).not.toBe(canon('json', null));
    expect(canon('int', text('t'))).toBe('1');
    expect(canon('int', text('5'))).not.toBe(canon('int', text('t')));
    expect(canon('mybits', text('101010101010'))).toBe('2730');
    expect(canon('mybits', { form: 'hex', value: '0AAA' })).toBe('2730');
    expect(canon('binary', { form: 'hex', value: 'DEADBEEF' })).toBe('deadbeef');
    expect(canon('binary', text('deadbeef'))).toMatch(/^\?/);
  });
});

describe('row comparison', () => {
  afterAll(() => dropAll());

  it('finds a changed value, a missing row and an extra column, naming key and field', async () => {
    const a = await createSqlite('self_a');
    const b = await createSqlite('self_b');
    await a.script(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, n NUMERIC(10,2));
      INSERT INTO t VALUES (1, 'x', 1.5), (2, 'y', 2), (3, 'z', 3);`);
    await b.script(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, n NUMERIC(10,2));
      INSERT INTO t VALUES (1, 'x', 1.50), (2, 'y', 2), (3, 'z', 3);`);
    const [ta] = await tablesOf(a);
    expect((await compareValues(a, ta!, b, (await tablesOf(b))[0]!)).differences).toEqual([]);
    await b.script(
      `UPDATE t SET v = 'Y' WHERE id = 2; DELETE FROM t WHERE id = 3; ALTER TABLE t ADD COLUMN extra TEXT;`,
    );
    const diff = (await compareValues(a, ta!, b, (await tablesOf(b))[0]!)).differences.join('\n');
    expect(diff).toContain('the restored table has a column extra');
    expect(diff).toContain('3 rows in the source, 2 restored');
    expect(diff).toContain('(id=2) .v: source "y", restored "Y"');
    expect(diff).toContain('row only in source: (id=3)');
  });
});
