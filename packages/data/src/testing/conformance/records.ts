/** Fixtures of every field type, and the exact comparison of records the suite (and adapter tests) use. */
import { expect } from 'vitest';
import { normalizeRecord } from '../../codec.js';
import { JsonText, sameNumber } from '../../json-text.js';
import type { EntitySchema } from '../../schema.js';
import type { DataRecord } from '../../types.js';

export function typeFixtures(schema: EntitySchema): DataRecord[] {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => (i * 37) % 256);
  return [
    {
      id: 1,
      s: 'hello',
      u: 'f47ac10b-58cc-4372-a567-0e02b2c3d479',
      i: 42,
      n: 0.1 + 0.2,
      b: 2n ** 63n - 1n,
      d: '12.50',
      bo: true,
      dt: '2024-05-01T10:00:00.123456Z',
      da: '2024-02-29',
      j: { a: 1, nested: { arr: [1, 'two', null, true, { deep: 'ü😀' }] }, nul: null },
      bin: new Uint8Array([0, 0, 0]),
      v: Float32Array.from([1.1, -0, 3.4028234663852886e38, 1e-45]),
      opt: 'present',
      optNull: 7,
    },
    {
      id: 2,
      s: '',
      u: '00000000-0000-0000-0000-000000000000',
      i: Number.MAX_SAFE_INTEGER,
      n: 1e300,
      b: -(2n ** 63n),
      d: '123456789012345678901234567890.123456789',
      bo: false,
      dt: '1970-01-01T00:00:00.000001Z',
      da: '1999-12-31',
      j: [],
      bin: new Uint8Array(0),
      v: new Float32Array(4),
      opt: '',
      optNull: null,
    },
    {
      id: 3,
      s: 'line1\nline2\r\n\ttab "double" \'single\' \\ back ☃ 😀 𝄞 中文',
      u: 'F47AC10B-58CC-4372-A567-0E02B2C3D479',
      i: Number.MIN_SAFE_INTEGER,
      n: -2.5e-300,
      b: -1n,
      d: '-0.000000000000000000000000000001',
      bo: true,
      dt: '2999-12-31T23:59:59.999999Z',
      da: '2000-01-01',
      j: 'just a string',
      bin: bytes,
      v: Float32Array.from([-1.5, 2.5, 1 / 3, 7]),
    },
    {
      id: 4,
      s: 'x'.repeat(10_000),
      u: null,
      i: null,
      n: null,
      b: null,
      d: null,
      bo: null,
      dt: null,
      da: null,
      j: null,
      bin: null,
      v: null,
      optNull: null,
    },
    {
      id: 5,
      s: 'zero values',
      u: '123e4567-e89b-12d3-a456-426614174000',
      i: 0,
      n: -1.5,
      b: 0n,
      d: '0',
      bo: false,
      dt: '2024-05-01T10:00:00.000000Z',
      da: '2024-01-01',
      j: { deep: { deeper: { deepest: [[], {}, 0, -1.25, 'naïve'] } } },
      bin: new Uint8Array([255]),
      v: Float32Array.from([0.5, -0.5, 1e-10, -1e10]),
    },
    // Fields `schema` leaves out (a variant of the Types entity) are dropped.
  ].map((r) =>
    normalizeRecord(schema, Object.fromEntries(Object.entries(r).filter(([k]) => Object.hasOwn(schema.fields, k)))),
  );
}

/**
 * Whether two JSON texts hold the same value exactly: numbers compared as decimal numbers of any precision
 * (`1.10` = `1.1`, `1e2` = `100`, never rounded to doubles), objects by their keys in any order.
 */
export function sameJson(a: string, b: string): boolean {
  return sameTree(jsonTree(a), jsonTree(b));
}

type JsonTree = { n: string } | string | boolean | null | JsonTree[] | { o: [string, JsonTree][] };

/** A JSON text as a tree whose numbers stay text. */
function jsonTree(text: string): JsonTree {
  let i = 0;
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++;
  };
  const value = (): JsonTree => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const o: [string, JsonTree][] = [];
      ws();
      if (text[i] === '}') i++;
      else
        for (;;) {
          const key = value() as string;
          ws();
          i++; // :
          o.push([key, value()]);
          ws();
          if (text[i++] === '}') break;
        }
      return { o };
    }
    if (c === '[') {
      i++;
      const arr: JsonTree[] = [];
      ws();
      if (text[i] === ']') i++;
      else
        for (;;) {
          arr.push(value());
          ws();
          if (text[i++] === ']') break;
        }
      return arr;
    }
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const s = JSON.parse(text.slice(i, end + 1)) as string;
      i = end + 1;
      return s;
    }
    const m = /^(true|false|null|-?[0-9][0-9.eE+-]*)/.exec(text.slice(i))!;
    i += m[0].length;
    return m[0] === 'true' ? true : m[0] === 'false' ? false : m[0] === 'null' ? null : { n: m[0] };
  };
  return value();
}

function sameTree(x: JsonTree, y: JsonTree): boolean {
  if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object') return x === y;
  if (Array.isArray(x) || Array.isArray(y))
    return Array.isArray(x) && Array.isArray(y) && x.length === y.length && x.every((v, i) => sameTree(v, y[i]!));
  if ('n' in x || 'n' in y) return 'n' in x && 'n' in y && sameNumber(x.n, y.n);
  const ox = 'o' in x ? x.o : [];
  const oy = 'o' in y ? y.o : [];
  const sort = (o: [string, JsonTree][]) => [...o].sort((p, q) => (p[0] < q[0] ? -1 : p[0] > q[0] ? 1 : 0));
  const [sx, sy] = [sort(ox), sort(oy)];
  return sx.length === sy.length && sx.every(([k, v], i) => k === sy[i]![0] && sameTree(v, sy[i]![1]));
}

/** The JavaScript value of a json field's value (a JsonText parsed). */
function jsonValue(v: unknown): unknown {
  return v instanceof JsonText ? JSON.parse(v.text) : v;
}

function hexOf(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('hex');
}

function show(v: unknown): string {
  return typeof v === 'bigint' ? `${v}n` : Object.is(v, -0) ? '-0' : String(v);
}

/** Field-by-field exact comparison: types, bits of floats and vectors, bytes of binaries, absent vs null. */
export function expectSameRecord(
  schema: EntitySchema,
  got: DataRecord | undefined,
  want: DataRecord,
  label: string,
): void {
  expect(got, `${label}: record missing`).toBeDefined();
  if (!got) return;
  expect(Object.keys(got).sort(), `${label}: fields present`).toEqual(Object.keys(want).sort());
  for (const [name, spec] of Object.entries(schema.fields)) {
    const w = want[name];
    const g = got[name];
    const where = `${label}.${name}`;
    if (w === undefined) {
      expect(name in got, `${where} should be absent`).toBe(false);
    } else if (w === null) {
      expect(g, where).toBeNull();
    } else if (spec.type === 'binary') {
      expect(g, `${where} is a Uint8Array`).toBeInstanceOf(Uint8Array);
      expect(hexOf(g as Uint8Array), where).toBe(hexOf(w as Uint8Array));
    } else if (spec.type === 'vector') {
      expect(g, `${where} is a Float32Array`).toBeInstanceOf(Float32Array);
      expect(hexOf(g as Float32Array), `${where} bits`).toBe(hexOf(w as Float32Array));
    } else if (spec.type === 'number') {
      expect(Object.is(g, w), `${where}: got ${show(g)}, want ${show(w)}`).toBe(true);
    } else if (spec.type === 'bigint') {
      expect(typeof g, where).toBe('bigint');
      expect(g, where).toBe(w);
    } else if (spec.type === 'json') {
      // A JsonText (an exact export, a decoded archive line) compares by its value here; exactness has its own test.
      expect(jsonValue(g), where).toEqual(jsonValue(w));
    } else {
      expect(g, where).toBe(w);
    }
  }
}
