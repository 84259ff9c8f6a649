/**
 * JSON kept as its exact text. A store's JSON column holds text: numbers of any size and precision, keys in their
 * order (duplicates included), whitespace (PostgreSQL `json`). Parsing it into JavaScript values would round
 * `12345678901234567890123` to a double and fold duplicate keys, so backups and restores carry JSON as a
 * {@link JsonText} and write its text back as it is. JavaScript values (`t.json()` fields written by code) are
 * turned into text with `JSON.stringify`.
 */
import { DataError } from './errors.js';
import type { JsonValue } from './fields.js';

/** The exact text of one JSON value (as a store holds it). */
export class JsonText {
  readonly text: string;

  /** Takes `text` as it is; {@link JsonText.parse} checks that it is JSON. */
  constructor(text: string) {
    this.text = text;
  }

  /** `text` as a JsonText, after checking it is one JSON value; throws a TypeError saying why not. */
  static parse(text: string): JsonText {
    try {
      JSON.parse(text);
    } catch (e) {
      throw new TypeError(`not JSON text (${(e as Error).message})`);
    }
    return new JsonText(text);
  }

  toString(): string {
    return this.text;
  }

  /**
   * Refuses to be serialised by `JSON.stringify`, which would turn it into a JavaScript value first: code that writes
   * a json field must use {@link jsonTextOf} (or the text), so an exact value is never rounded by a forgotten path.
   */
  toJSON(): never {
    throw new TypeError('A JsonText is written with jsonTextOf(value), not JSON.stringify: its text is kept exactly');
  }
}

/** The JSON text of a json field's runtime value: a {@link JsonText}'s own text, else `JSON.stringify(value)`. */
export function jsonTextOf(value: unknown): string {
  return value instanceof JsonText ? value.text : JSON.stringify(value);
}

/**
 * The JavaScript value of a json field's runtime value, for stores that keep JSON as JavaScript values (memory, JSON
 * files, Redis). A {@link JsonText} whose value JavaScript cannot hold exactly is refused with `UNSUPPORTED_VALUE`
 * naming `where`: a number that a double would change (`12345678901234567890123`, `0.10000000000000000001`), an
 * object with the same key twice, or JSON `null` itself (such stores hold SQL NULL as JavaScript `null` too). Key order and blanks between tokens are not kept by such stores (documented).
 */
export function jsValueOf(value: unknown, where: string): JsonValue {
  if (!(value instanceof JsonText)) return value as JsonValue;
  const parsed = JSON.parse(value.text) as JsonValue;
  // JSON null would be stored as JavaScript null, which these stores (and nested lines) read back as SQL NULL.
  const loss =
    parsed === null ? 'it is JSON null, which this store cannot tell from SQL NULL' : jsonTextLoss(value.text);
  if (loss)
    throw new DataError(
      'UNSUPPORTED_VALUE',
      `${where}: ${loss}, which this store keeps as a JavaScript value and would change. Restore it into a store that keeps JSON as text (PostgreSQL, MariaDB/MySQL, SQLite, LanceDB).`,
      { details: { where } },
    );
  return parsed;
}

/**
 * Why the JSON `text` cannot become a JavaScript value and back without changing it (a number a double cannot hold,
 * a key given twice in one object), or undefined. `text` must be valid JSON.
 */
export function jsonTextLoss(text: string): string | undefined {
  const objects: Set<string>[] = [];
  const containers: ('{' | '[')[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let end = i + 1;
      for (; end < text.length; end++) {
        const d = text.charCodeAt(end);
        if (d === 0x5c) end++;
        else if (d === 0x22) break;
      }
      if (expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        const seen = objects[objects.length - 1]!;
        if (seen.has(key)) return `the key ${JSON.stringify(key)} appears twice in one object`;
        seen.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b) {
      containers.push('{');
      objects.push(new Set());
      expectKey = true;
    } else if (c === 0x5b) {
      containers.push('[');
    } else if (c === 0x7d || c === 0x5d) {
      if (containers.pop() === '{') objects.pop();
    } else if (c === 0x2c) {
      expectKey = containers[containers.length - 1] === '{';
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let end = i + 1;
      while (end < text.length && /[0-9eE.+-]/.test(text[end]!)) end++;
      const token = text.slice(i, end);
      if (!sameNumber(token, String(Number(token)))) return `the number ${token} has more digits than a double keeps`;
      i = end - 1;
    }
  }
  return undefined;
}

/** Whether two JSON number texts are the same decimal number (`1.10` and `1.1`, `1e2` and `100`). */
export function sameNumber(a: string, b: string): boolean {
  const x = decimalParts(a);
  const y = decimalParts(b);
  if (x.digits === '' && y.digits === '') return true; // zeros, whatever their sign
  return x.negative === y.negative && x.digits === y.digits && x.exponent === y.exponent;
}

/** A number text as sign, significant digits (no leading or trailing zeros) and the exponent of its first digit. */
function decimalParts(text: string): { negative: boolean; digits: string; exponent: number } {
  const m = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return { negative: false, digits: text, exponent: 0 };
  const int = m[2] ?? '';
  const frac = m[3] ?? '';
  let digits = int + frac;
  let exponent = int.length + Number(m[4] ?? 0);
  const lead = digits.length - digits.replace(/^0+/, '').length;
  digits = digits.slice(lead).replace(/0+$/, '');
  exponent -= lead;
  return { negative: m[1] === '-', digits, exponent: digits === '' ? 0 : exponent };
}
