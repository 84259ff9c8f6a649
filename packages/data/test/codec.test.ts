import {
  assertSetName,
  DataError,
  decodeRecord,
  defineEntity,
  encodeRecordLine,
  fieldFromNote,
  fieldNote,
  normalizeDatetime,
  normalizeRecord,
  t,
  unregisterEntity,
} from '@koan/data';
import { describe, expect, it } from 'vitest';

const Sample = defineEntity({
  name: 'CodecSample',
  key: 'id',
  fields: {
    id: t.integer(),
    n: t.number(),
    big: t.bigint(),
    dec: t.decimal(),
    at: t.datetime(),
    bin: t.binary(),
    vec: t.vector(3),
    opt: t.string().optional(),
    nul: t.string().nullable(),
  },
});
unregisterEntity('CodecSample');

describe('archive JSON encoding', () => {
  it('round-trips every special value exactly', () => {
    const rec = normalizeRecord(Sample.schema, {
      id: 1,
      n: -0,
      big: 2n ** 62n + 1n,
      dec: '12345678901234567890.123456789',
      at: '2024-05-01T12:00:00.123456+02:00',
      bin: new Uint8Array([0, 255, 7]),
      vec: new Float32Array([Number.NaN, -0, 1.1]),
      nul: null,
    });
    expect(rec.at).toBe('2024-05-01T10:00:00.123456Z');
    const line = encodeRecordLine(Sample.schema, rec);
    expect(line).not.toContain('opt');
    const back = decodeRecord(Sample.schema, JSON.parse(line)).record;
    expect(Object.is(back.n, -0)).toBe(true);
    expect(back.big).toBe(2n ** 62n + 1n);
    expect(back.dec).toBe('12345678901234567890.123456789');
    expect(back.nul).toBeNull();
    expect('opt' in back).toBe(false);
    expect(Buffer.from((back.vec as Float32Array).buffer)).toEqual(Buffer.from((rec.vec as Float32Array).buffer));
  });

  it('names the field and the fix for a bad value', () => {
    expect(() => normalizeRecord(Sample.schema, { id: 1.5 })).toThrow(
      /CodecSample\.id: expected integer.*safe integer/,
    );
    expect(() =>
      normalizeRecord(Sample.schema, {
        id: 1,
        n: 1,
        big: 1n,
        dec: '1',
        at: 'x',
        bin: new Uint8Array(),
        vec: [1, 2, 3],
        nul: null,
      }),
    ).toThrow(/CodecSample\.at/);
  });

  it('normalises dates to UTC microseconds', () => {
    expect(normalizeDatetime(new Date('2024-01-01T00:00:00.5Z'))).toBe('2024-01-01T00:00:00.500000Z');
    expect(normalizeDatetime('2024-01-01 23:59:59.1234567')).toBe('2024-01-01T23:59:59.123456Z');
    // Days and hours that do not exist are refused, not rolled over into the next month or day.
    for (const bad of ['2024-02-30T10:00:00Z', '2023-02-29T00:00:00Z', '2024-04-31 12:00', '2024-01-01T24:00:00Z'])
      expect(normalizeDatetime(bad), bad).toBeUndefined();
    expect(normalizeDatetime('2024-02-29T23:59:59.999999Z')).toBe('2024-02-29T23:59:59.999999Z');
  });
});

describe('set names', () => {
  it('a bad set name is a DataError INVALID_NAME naming the rule and an example', () => {
    expect(() => assertSetName('archive-2024')).not.toThrow();
    for (const bad of ['bad set', '', '.hidden', 'x'.repeat(64)]) {
      const err = (() => {
        try {
          assertSetName(bad);
        } catch (e) {
          return e;
        }
      })() as DataError;
      expect(err, JSON.stringify(bad)).toBeInstanceOf(DataError);
      expect(err.code).toBe('INVALID_NAME');
      expect(err.message).toMatch(/1-63 characters.*e\.g\. "archive-2024"/);
    }
  });
});

describe('column notes', () => {
  it('fieldNote round-trips a field through fieldFromNote; other comments are not notes', () => {
    for (const field of [
      t.vector(3).nullable(),
      t.decimal(12, 2).optional(),
      t.json().optional().nullable(),
      t.datetime().ttl(),
      t.uuid(),
    ]) {
      const { references: _, description: __, ...spec } = field.spec;
      expect(fieldFromNote(fieldNote(field.spec))).toEqual(spec);
    }
    for (const other of [undefined, null, '', 'owned by billing', 'koan:Person', 'koan:{"type":"weird"}', 'koan:{'])
      expect(fieldFromNote(other), String(other)).toBeUndefined();
  });
});
