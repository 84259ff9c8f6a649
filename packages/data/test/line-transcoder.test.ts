import { describe, expect, it } from 'vitest';
import {
  buildSchema,
  decodeArchiveLines,
  decodeValue,
  encodeRecordLine,
  type LineTarget,
  lineTranscoder,
  normalizeRecord,
  scanCanonicalLine,
} from '../src/entries/adapter-kit.js';
import { JsonText, t } from '../src/index.js';
import { compactJsonBytes } from '../src/line-transcoder.js';

const Doc = buildSchema(
  {
    name: 'ScanDoc',
    key: 'id',
    fields: {
      id: t.integer(),
      s: t.string(),
      n: t.number().nullable(),
      b: t.bigint(),
      ok: t.boolean(),
      j: t.json().nullable(),
      opt: t.string().optional(),
    },
  },
  'declared',
);

const record = (i: number, extra: Record<string, unknown> = {}) =>
  normalizeRecord(Doc, {
    id: i,
    s: `s${i}`,
    n: i / 4,
    b: BigInt(i) * 10n ** 15n,
    ok: i % 2 === 0,
    j: [i, { k: 'v' }],
    ...extra,
  });

/** A target that shows each raw value, to see what the scanner cut out. */
const SHOW: LineTarget = {
  null: 'NULL',
  separator: '|',
  canonical: () => (raw) => `<${raw}>`,
  // Checked like decodeValue, as real targets do.
  parsed: (spec) => (value) => `(${String(decodeValue(spec, value))})`,
};

describe('scanCanonicalLine / lineTranscoder (json nested: line format 1)', () => {
  it('cuts the raw values out of canonical lines, absent and null apart', () => {
    const line = encodeRecordLine(Doc, record(3, { opt: 'x', j: null }), 'nested');
    expect(scanCanonicalLine(Doc, line, 'nested')).toEqual(['3', 's3', '0.75', '3000000000000000', 'false', null, 'x']);
    expect(scanCanonicalLine(Doc, encodeRecordLine(Doc, record(4), 'nested'), 'nested')).toEqual([
      '4',
      's4',
      '1',
      '4000000000000000',
      'true',
      '[4,{"k":"v"}]',
      undefined,
    ]);
    expect(lineTranscoder(Doc, SHOW, 'nested').canonical(line)).toBe(
      '<3>|<s3>|<0.75>|<3000000000000000>|<false>|NULL|<x>',
    );
  });

  it('declines every line that is not canonical, and the parsing path then decides', () => {
    const good = encodeRecordLine(Doc, record(5), 'nested');
    const declined = [
      good.replace('"s5"', '"s\\"5"'), // an escape
      good.replace(':5,', ': 5,'), // whitespace
      `{"s":"s5",${good.slice(1).replace('"s":"s5",', '')}`, // another field order
      `${good.slice(0, -1)},"zz":1}`, // an unknown field
      good.replace('"id":5', '"id":5.5'), // not an integer
      good.replace('"id":5', '"id":"5"'), // a string for an integer
      good.replace(/"b":"\d+"/, '"b":"12x"'), // not digits
      good.replace('"ok":false', '"ok":0'),
      good.replace('[5,{"k":"v"}]', '[5,{"k":"v"}'), // unbalanced json
      good.slice(0, -1),
    ];
    const t = lineTranscoder(Doc, SHOW, 'nested');
    for (const line of declined) {
      expect(scanCanonicalLine(Doc, line, 'nested'), line).toBeUndefined();
      expect(t.canonical(line), line).toBeUndefined();
    }
    // The parsing path takes the valid ones and names what is wrong in the others.
    expect(t.row(declined[0]!, 0)).toBe(t.parsed(declined[0]!, 0));
    expect(t.row(declined[1]!, 0)).toBe(t.parsed(good, 0));
    expect(t.row(declined[2]!, 0)).toBe(t.parsed(good, 0));
    expect(() => t.row(declined[3]!, 7)).toThrow(/line 8 has fields the schema does not know: zz/);
    expect(() => t.row(declined[5]!, 7)).toThrow(/ScanDoc\.id: expected an integer/);
  });

  it('pieces gives every row with its newline, in whole-row strings of about maxChars, numbering lines from firstLine', () => {
    const tr = lineTranscoder(Doc, SHOW, 'nested');
    const lines = Array.from({ length: 500 }, (_, i) =>
      encodeRecordLine(Doc, record(i, { s: 'ü'.repeat(i % 90) }), 'nested'),
    );
    const all = lines.map((l, i) => `${tr.row(l, i)}\n`).join('');
    const pieces = tr.pieces(lines, 0, 2000);
    expect(pieces.join('')).toBe(all);
    expect(pieces.length).toBeGreaterThan(10);
    for (const piece of pieces) {
      expect(piece.endsWith('\n')).toBe(true);
      expect(piece.length).toBeLessThan(2000 + 200);
    }
    expect(tr.pieces(lines).join('')).toBe(all);
    expect(tr.pieces(lines, 0, Number.POSITIVE_INFINITY)).toEqual([all]);
    expect(tr.pieces([])).toEqual([]);
    expect(() => tr.pieces([lines[0]!, '{"id":1,"x":2}'], 41)).toThrow(
      /line 43 has fields the schema does not know: x/,
    );
  });

  it('decodeArchiveLines decodes like decodeRecord and refuses unknown fields by line', () => {
    const lines = [record(1), record(2, { opt: 'o' })].map((r) => encodeRecordLine(Doc, r, 'nested'));
    expect(decodeArchiveLines(Doc, lines, 'nested')).toEqual([record(1), record(2, { opt: 'o' })]);
    expect(() => decodeArchiveLines(Doc, ['{"id":1,"x":2}'], 'nested', 41)).toThrow(
      /line 42 has fields the schema does not know: x/,
    );
  });
});

describe('scanCanonicalLine / lineTranscoder (json as exact text: line format 2)', () => {
  it('hands a json field its exact JSON text on both paths, and tells JSON null from SQL NULL', () => {
    const big = '{"big":12345678901234567890123,"k":1,"k":2.50}';
    const line = encodeRecordLine(Doc, record(3, { j: new JsonText(big) }), 'text');
    expect(line).toContain(JSON.stringify(big));
    const t = lineTranscoder(Doc, SHOW, 'text');
    expect(scanCanonicalLine(Doc, line, 'text')).toBeUndefined(); // the text's quotes are escaped in the line
    expect(t.row(line, 0)).toBe(`(3)|(s3)|(0.75)|(3000000000000000)|(false)|(${big})|NULL`);
    // An array of numbers has no quote to escape: the canonical path takes it as the text.
    const plain = encodeRecordLine(Doc, record(4, { j: new JsonText('[4,5.10]') }), 'text');
    expect(scanCanonicalLine(Doc, plain, 'text')?.[5]).toBe('[4,5.10]');
    // JSON null is the text "null"; SQL NULL is null.
    const jsonNull = encodeRecordLine(Doc, record(5, { j: new JsonText('null') }), 'text');
    const sqlNull = encodeRecordLine(Doc, record(5, { j: null }), 'text');
    expect(jsonNull).toContain('"j":"null"');
    expect(sqlNull).toContain('"j":null');
    expect(scanCanonicalLine(Doc, jsonNull, 'text')?.[5]).toBe('null');
    expect(scanCanonicalLine(Doc, sqlNull, 'text')?.[5]).toBeNull();
  });

  it('refuses json text that is not JSON, on both paths, naming the field and line', () => {
    const t = lineTranscoder(Doc, SHOW, 'text');
    const line = JSON.stringify({ ...JSON.parse(encodeRecordLine(Doc, record(6), 'text')), j: '[1,' });
    expect(scanCanonicalLine(Doc, line, 'text')).toBeUndefined();
    expect(() => t.row(line, 2)).toThrow(/ScanDoc\.j: not JSON text/);
    const nested = encodeRecordLine(Doc, record(6), 'nested');
    expect(() => t.row(nested, 2)).toThrow(/ScanDoc\.j: expected the JSON text of the value as a string/);
  });

  it('decodeArchiveLines gives json fields as JsonText, exactly', () => {
    const text = '{"b":1, "a":[1e400, 0.10000000000000000001]}';
    const [r] = decodeArchiveLines(Doc, [encodeRecordLine(Doc, record(1, { j: new JsonText(text) }), 'text')], 'text');
    expect(r!.j).toBeInstanceOf(JsonText);
    expect((r!.j as JsonText).text).toBe(text);
  });
});

describe('compactJsonBytes', () => {
  const compact = (text: string): string | -1 => {
    const src = Buffer.from(`#${text}#`);
    const out = Buffer.alloc(src.length);
    const n = compactJsonBytes(src, 1, src.length - 1, out, 0);
    return n < 0 ? -1 : out.toString('utf8', 0, n);
  };

  it('drops blanks outside strings and keeps strings byte for byte', () => {
    const cases = [
      '{ "a" : [ 1 ,\n\t2 ] ,\r\n "s" : "x y  z" }',
      '[ "quote \\" inside", "back\\\\slash ", "\\u0001 é 😀" , { } , [ ] ]',
      ' "just a string with  spaces" ',
      '  -1.5  ',
      '{"already":"compact"}',
    ];
    for (const text of cases) expect(compact(text), text).toBe(JSON.stringify(JSON.parse(text)));
  });

  it('refuses control characters JSON does not allow, and a string ending in a lone backslash', () => {
    expect(compact('["tab\tinside"]')).toBe(-1);
    expect(compact('[1,\u00012]')).toBe(-1);
    expect(compact('"ends in \\')).toBe(-1);
  });
});
