import { DataError, defineEntity, JsonText, t, unregisterEntity } from '@koan/data';
import {
  assertSetName,
  buildSchema,
  decodeRecord,
  encodeRecordLine,
  fieldFromNote,
  fieldNote,
  jsonTextLoss,
  jsValueOf,
  normalizeDatetime,
  normalizeRecord,
} from '@koan/data/adapter-kit';
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
    const line = encodeRecordLine(Sample.schema, rec, 'text');
    expect(line).not.toContain('opt');
    const back = decodeRecord(Sample.schema, JSON.parse(line), 'text').record;
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

  it('keeps dates beyond the ordinary calendar in their special forms, and refuses impossible ones', () => {
    const Dated = buildSchema(
      { name: 'Dated', key: 'id', fields: { id: t.integer(), at: t.datetime(), day: t.date() } },
      'declared',
    );
    const special = [
      ['infinity', 'infinity'],
      ['-infinity', '-infinity'],
      ['+010000-01-01T00:00:00.000000Z', '+010000-01-01'], // year 10000
      ['-000043-03-15T12:00:00.000000Z', '-000043-03-15'], // 44 BC
      ['+000000-02-29T00:00:00.000000Z', '+000000-02-29'], // 1 BC, a leap year
      ['0000-00-00T00:00:00.000000Z', '0000-00-00'], // MySQL zero date
      ['2024-00-15T00:00:00.000000Z', '2024-00-15'],
    ] as const;
    for (const [at, day] of special) {
      const rec = normalizeRecord(Dated, { id: 1, at, day });
      const back = decodeRecord(Dated, JSON.parse(encodeRecordLine(Dated, rec, 'text')), 'text').record;
      expect(back, at).toEqual({ id: 1, at, day });
    }
    // One spelling per instant: years 1-9999 have four digits; impossible days are refused in every form.
    for (const bad of ['+002024-01-01', '-000043-02-30', '0000-13-00', 'Infinity', '+10000-01-01', '2024-02-30'])
      expect(() => normalizeRecord(Dated, { id: 1, at: 'infinity', day: bad }), bad).toThrow(/Dated\.day/);
    expect(normalizeDatetime(new Date(Date.UTC(-43, 2, 15)))).toBe('-000043-03-15T00:00:00.000000Z');
    expect(normalizeDatetime(new Date('0000-06-01T00:00:00Z'))).toBe('+000000-06-01T00:00:00.000000Z');
    // Lines are checked as they decode: a datetime that is not spelled as archives spell it is refused.
    expect(() => decodeRecord(Dated, { id: 1, at: '2024-01-01 10:00', day: '2024-01-01' }, 'text')).toThrow(
      /Dated\.at: expected a datetime/,
    );
  });
});

describe('json fields', () => {
  const Doc = buildSchema(
    { name: 'JsonDoc', key: 'id', fields: { id: t.integer(), j: t.json().nullable() } },
    'declared',
  );
  it('archive lines hold the exact JSON text (big numbers, key order, duplicate keys, blanks); JSON null is not SQL NULL', () => {
    const text = '{ "b": 12345678901234567890123, "a": 1.10, "a": [0.10000000000000000001] }';
    const line = encodeRecordLine(Doc, { id: 1, j: new JsonText(text) }, 'text');
    expect(JSON.parse(line).j).toBe(text);
    const back = decodeRecord(Doc, JSON.parse(line), 'text').record.j as JsonText;
    expect(back).toBeInstanceOf(JsonText);
    expect(back.text).toBe(text);
    expect(encodeRecordLine(Doc, { id: 2, j: new JsonText('null') }, 'text')).toBe('{"id":2,"j":"null"}');
    expect(encodeRecordLine(Doc, { id: 2, j: null }, 'text')).toBe('{"id":2,"j":null}');
    // Values written by code are spelled by JSON.stringify.
    expect(encodeRecordLine(Doc, { id: 3, j: { x: [1, 'two'] } }, 'text')).toBe(
      '{"id":3,"j":"{\\"x\\":[1,\\"two\\"]}"}',
    );
    // A JsonText is never turned into a JavaScript value by a forgotten JSON.stringify.
    expect(() => JSON.stringify({ j: new JsonText('1') })).toThrow(/jsonTextOf/);
  });

  it('stores that keep JavaScript values refuse JSON a double or an object cannot hold, by name', () => {
    expect(jsValueOf(new JsonText('{"a":[1,2.5,-0.001,1e21]}'), 'X.j')).toEqual({ a: [1, 2.5, -0.001, 1e21] });
    expect(jsValueOf(new JsonText('1.10'), 'X.j')).toBe(1.1); // the same number
    for (const [text, why] of [
      ['12345678901234567890123', /more digits than a double keeps/],
      ['{"a":0.10000000000000000001}', /more digits than a double keeps/],
      ['{"k":1,"k":2}', /key "k" appears twice/],
      ['[{"x":{"y":1,"y":1}}]', /key "y" appears twice/],
      // JavaScript null is what such stores read back as SQL NULL.
      ['null', /JSON null, which this store cannot tell from SQL NULL/],
      [' null ', /JSON null/],
    ] as const) {
      const err = (() => {
        try {
          jsValueOf(new JsonText(text), 'X.j');
        } catch (e) {
          return e as DataError;
        }
      })();
      expect(err?.code, text).toBe('UNSUPPORTED_VALUE');
      expect(err?.message, text).toMatch(why);
      expect(err?.message, text).toMatch(/^X\.j: /);
    }
    expect(jsonTextLoss('{"a":"12345678901234567890123","b":{"a":1}}')).toBeUndefined(); // in strings, other objects
  });

  it('format 1 (nested) lines still decode, and a line naming __proto__ or constructor is an unknown field', () => {
    expect(decodeRecord(Doc, { id: 1, j: { a: 1 } }, 'nested').record).toEqual({ id: 1, j: { a: 1 } });
    expect(decodeRecord(Doc, JSON.parse('{"id":1,"__proto__":{"x":1},"constructor":2}'), 'text').unknown).toEqual([
      '__proto__',
      'constructor',
    ]);
    expect(() => normalizeRecord(Doc, JSON.parse('{"id":1,"j":1,"__proto__":{}}'))).toThrow(
      /unknown field "__proto__"/,
    );
  });
});

describe('unsigned bigints', () => {
  it('hold 0 to 2^64-1 exactly; signed ones the signed range', () => {
    const U = buildSchema(
      { name: 'U', key: 'id', fields: { id: t.integer(), u: t.bigint(), s: t.bigint() } },
      'declared',
    );
    const unsigned = { ...U, fields: { ...U.fields, u: { ...U.fields.u!, unsigned: true } } };
    const max = 2n ** 64n - 1n;
    const rec = normalizeRecord(unsigned, { id: 1, u: max, s: -(2n ** 63n) });
    expect(decodeRecord(unsigned, JSON.parse(encodeRecordLine(unsigned, rec, 'text')), 'text').record.u).toBe(max);
    expect(() => normalizeRecord(unsigned, { id: 1, u: -1n, s: 0n })).toThrow(/U\.u: .*0 to 2\^64-1/);
    expect(() => normalizeRecord(U, { id: 1, u: max, s: 0n })).toThrow(/U\.u: .*signed 64-bit/);
    expect(() => decodeRecord(U, { id: 1, u: String(max), s: '0' }, 'text')).toThrow(/outside the signed 64-bit range/);
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
