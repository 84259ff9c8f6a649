/**
 * Archive JSON lines straight to a store's bulk-load text (PostgreSQL COPY, MySQL LOAD DATA), without records.
 *
 * Most lines are canonical: written by `encodeRecordLine` or a store's own export, fields in schema order, compact,
 * no escapes. Those are cut up by a scanner that finds the values with `indexOf` and builds no objects; any other
 * line (escapes, whitespace, another field order, unknown fields, invalid JSON) is parsed with `JSON.parse` and
 * checked like `decodeRecord`, which names what is wrong. A target formats each value both ways to the same text.
 */
import type { ImportResult } from './adapter.js';
import { decodeRecord } from './codec.js';
import { DataError, KoanError } from './errors.js';
import type { FieldSpec } from './fields.js';
import type { JsonEncoding } from './line-format.js';
import type { EntitySchema } from './schema.js';
import type { DataRecord } from './types.js';

/** How a store's bulk text spells the fields of a row. */
export interface LineTarget {
  /** Text of NULL (COPY and LOAD DATA: `\N`). */
  readonly null: string;
  /** Between fields (tab). Rows end with a newline. */
  readonly separator: string;
  /**
   * Formats a value cut from a canonical line: a string's characters (without quotes; no escape and no control
   * character in them), a number's JSON text (already checked: an integer field gets a safe integer, a bigint field
   * digits, a number field a JSON number or `NaN`/`Infinity`/`-Infinity`/`-0`), `true`/`false`, or a json field's
   * exact JSON text (checked to be JSON). `undefined` sends the line down the parsing path.
   */
  canonical(spec: FieldSpec, name: string): (raw: string) => string | undefined;
  /**
   * Formats a parsed archive value (never null or undefined); throws a TypeError describing a mismatch. A json
   * field's value is its exact JSON text (a string, checked to be JSON), whatever the line format.
   */
  parsed(spec: FieldSpec, name: string): (value: unknown) => string;
}

export interface LineTranscoder {
  /** The row text (no newline) of a canonical line, or `undefined` for any other line. */
  canonical(line: string): string | undefined;
  /**
   * The row text of any line. A line that does not decode throws `DataError` `INVALID_VALUE` whose
   * `details.line` is `index` (and `details.field` the field, where one is at fault).
   */
  row(line: string, index: number): string;
  /** The row text of any line through the parsing path only (what `row` falls back to). */
  parsed(line: string, index: number): string;
  /**
   * The rows of `lines`, each ending with a newline, as strings of about `maxChars` (whole rows each; default
   * {@link STREAM_PIECE_BYTES}); `firstLine` is the index of the first line, for errors.
   */
  pieces(lines: readonly string[], firstLine?: number, maxChars?: number): string[];
}

/**
 * The size stream pieces are cut to on the backup and restore paths (export chunks, COPY / LOAD DATA text). It stays
 * under malloc's mmap threshold (128 KiB) and V8's large-object size: a larger buffer or string is a fresh memory
 * mapping each time, and its page faults cost more than the work done on it (measured: a third of a 1M-row backup).
 */
export const STREAM_PIECE_BYTES = 60 * 1024;

enum Kind {
  /** A JSON string whose characters go to the target. */
  Text,
  Bigint,
  Integer,
  Number,
  Boolean,
  /** A json field nested in the line (format 1): its raw JSON span. */
  Json,
  /** A json field as a string holding its JSON text (format 2): the string's characters, checked to be JSON. */
  JsonText,
}

const KINDS: Readonly<Record<FieldSpec['type'], Kind>> = {
  string: Kind.Text,
  uuid: Kind.Text,
  decimal: Kind.Text,
  date: Kind.Text,
  datetime: Kind.Text,
  binary: Kind.Text,
  vector: Kind.Text,
  bigint: Kind.Bigint,
  integer: Kind.Integer,
  number: Kind.Number,
  boolean: Kind.Boolean,
  json: Kind.Json,
};

/** A backslash (an escape) or a raw control character (invalid JSON): the line takes the parsing path. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const NOT_PLAIN = /[\u0000-\u001f\\]/;
const JSON_INTEGER = /^-?(0|[1-9]\d*)$/;
const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
const DIGITS = /^-?\d+$/;
const SPECIAL_NUMBERS = new Set(['NaN', 'Infinity', '-Infinity', '-0']);
const QUOTE = 0x22;

const caches: Record<JsonEncoding, WeakMap<EntitySchema, WeakMap<LineTarget, LineTranscoder>>> = {
  text: new WeakMap(),
  nested: new WeakMap(),
};

/**
 * The transcoder of `schema`'s archive lines into `target`'s rows (cached per schema, target and encoding). `json`
 * is how the lines spell json fields (`text` in archives of line format 2, `nested` in format 1).
 */
export function lineTranscoder(schema: EntitySchema, target: LineTarget, json: JsonEncoding): LineTranscoder {
  const cache = caches[json];
  let byTarget = cache.get(schema);
  if (!byTarget) {
    byTarget = new WeakMap();
    cache.set(schema, byTarget);
  }
  let t = byTarget.get(target);
  if (!t) {
    t = compile(schema, target, json);
    byTarget.set(target, t);
  }
  return t;
}

interface Step {
  readonly name: string;
  readonly head: string;
  readonly next: string;
  readonly optional: boolean;
  readonly kind: Kind;
}

const stepsCaches: Record<JsonEncoding, WeakMap<EntitySchema, readonly Step[]>> = {
  text: new WeakMap(),
  nested: new WeakMap(),
};

function stepsOf(schema: EntitySchema, json: JsonEncoding): readonly Step[] {
  const stepsCache = stepsCaches[json];
  let steps = stepsCache.get(schema);
  if (!steps) {
    steps = Object.entries(schema.fields).map(([name, spec]) => ({
      name,
      head: `${JSON.stringify(name)}:`,
      next: `,${JSON.stringify(name)}:`,
      optional: spec.optional === true,
      kind: spec.type === 'json' && json === 'text' ? Kind.JsonText : KINDS[spec.type],
    }));
    stepsCache.set(schema, steps);
  }
  return steps;
}

/** Whether `text` is JSON text. */
function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * The raw values of a canonical line, in schema order: a string's characters (no escape or control character in
 * them), a number's checked JSON text, `true`/`false`, a json field's whole JSON text; `null` for JSON null and
 * `undefined` for an absent optional field. `undefined` (the whole result) for any line that is not canonical:
 * parse it instead (`parseLine`, `decodeRecord`). See {@link LineTarget.canonical} for what is checked.
 */
export function scanCanonicalLine(
  schema: EntitySchema,
  line: string,
  json: JsonEncoding,
): (string | null | undefined)[] | undefined {
  const steps = stepsOf(schema, json);
  const tokens = new Array<string | null | undefined>(steps.length);
  return scan(steps, line, tokens) ? tokens : undefined;
}

function scan(steps: readonly Step[], line: string, tokens: (string | null | undefined)[]): boolean {
  const n = line.length;
  if (n < 2 || line.charCodeAt(0) !== 0x7b || line.charCodeAt(n - 1) !== 0x7d || NOT_PLAIN.test(line)) return false;
  let pos = 1;
  let first = true;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    const prefix = first ? step.head : step.next;
    if (!line.startsWith(prefix, pos)) {
      if (!step.optional) return false;
      tokens[i] = undefined;
      continue;
    }
    first = false;
    pos += prefix.length;
    let raw: string;
    const c = line.charCodeAt(pos);
    if (c === 0x6e) {
      if (!line.startsWith('null', pos)) return false;
      tokens[i] = null;
      pos += 4;
      continue;
    }
    switch (step.kind) {
      case Kind.Text:
      case Kind.JsonText:
      case Kind.Bigint: {
        if (c !== QUOTE) return false;
        const end = line.indexOf('"', pos + 1);
        if (end < 0) return false;
        raw = line.slice(pos + 1, end);
        if (step.kind === Kind.Bigint && !DIGITS.test(raw)) return false;
        if (step.kind === Kind.JsonText && !isJsonText(raw)) return false;
        pos = end + 1;
        break;
      }
      case Kind.Integer:
      case Kind.Number: {
        if (c === QUOTE) {
          if (step.kind === Kind.Integer) return false;
          const end = line.indexOf('"', pos + 1);
          if (end < 0) return false;
          raw = line.slice(pos + 1, end);
          if (!SPECIAL_NUMBERS.has(raw)) return false;
          pos = end + 1;
          break;
        }
        const end = scalarEnd(line, pos);
        raw = line.slice(pos, end);
        if (
          step.kind === Kind.Integer
            ? !JSON_INTEGER.test(raw) || !Number.isSafeInteger(Number(raw))
            : !JSON_NUMBER.test(raw)
        )
          return false;
        pos = end;
        break;
      }
      case Kind.Boolean:
        if (line.startsWith('true', pos)) raw = 'true';
        else if (line.startsWith('false', pos)) raw = 'false';
        else return false;
        pos += raw.length;
        break;
      case Kind.Json: {
        const end = jsonEnd(line, pos);
        if (end < 0) return false;
        raw = line.slice(pos, end);
        pos = end;
        break;
      }
    }
    tokens[i] = raw;
  }
  return pos === n - 1;
}

function compile(schema: EntitySchema, target: LineTarget, json: JsonEncoding): LineTranscoder {
  const steps = stepsOf(schema, json);
  const fields = Object.entries(schema.fields);
  const formats = fields.map(([name, spec]) => target.canonical(spec, name));
  const parsers = fields.map(([name, spec]) => target.parsed(spec, name));
  const { separator } = target;
  const nul = target.null;
  const tokens = new Array<string | null | undefined>(steps.length);

  const canonical = (line: string): string | undefined => {
    if (!scan(steps, line, tokens)) return undefined;
    let out = '';
    for (let i = 0; i < tokens.length; i++) {
      const raw = tokens[i];
      let text: string | undefined;
      if (raw === null || raw === undefined) text = nul;
      else {
        text = formats[i]!(raw);
        if (text === undefined) return undefined;
      }
      out += i === 0 ? text : separator + text;
    }
    return out;
  };

  const parsedRow = (line: string, index: number): string => {
    const obj = parseLine(schema, line, index);
    let row = '';
    let present = 0;
    for (let f = 0; f < steps.length; f++) {
      const step = steps[f]!;
      const value = Object.hasOwn(obj, step.name) ? obj[step.name] : undefined;
      let text: string;
      if (value === undefined || value === null) {
        if (value === null) present++;
        text = nul;
      } else {
        present++;
        try {
          text = parsers[f]!(
            step.kind === Kind.Json || step.kind === Kind.JsonText ? jsonTextValue(value, step.kind) : value,
          );
        } catch (e) {
          // A target's own refusal (UNSUPPORTED_VALUE: the store cannot hold the value) keeps its code; a value that
          // does not decode is INVALID_VALUE. Both name the line.
          if (e instanceof KoanError)
            throw new DataError(
              e.code,
              e.details.field === undefined ? `${schema.name}.${step.name}: ${e.message}` : e.message,
              { cause: e, details: { entity: schema.name, field: step.name, ...e.details, line: index } },
            );
          throw new DataError('INVALID_VALUE', `${schema.name}.${step.name}: ${(e as Error).message}`, {
            cause: e,
            details: { entity: schema.name, field: step.name, line: index },
          });
        }
      }
      row += f === 0 ? text : separator + text;
    }
    const names = Object.keys(obj);
    if (present !== names.length) {
      const unknown = names.filter((k) => !Object.hasOwn(schema.fields, k));
      throw new DataError(
        'INVALID_VALUE',
        `${schema.name}: line ${index + 1} has fields the schema does not know: ${unknown.join(', ')}`,
        { details: { entity: schema.name, line: index, fields: unknown } },
      );
    }
    return row;
  };

  const row = (line: string, index: number): string => canonical(line) ?? parsedRow(line, index);
  return {
    canonical,
    row,
    parsed: parsedRow,
    pieces(lines, firstLine = 0, maxChars = STREAM_PIECE_BYTES) {
      const out: string[] = [];
      let text = '';
      for (let i = 0; i < lines.length; i++) {
        text += `${row(lines[i]!, firstLine + i)}\n`;
        if (text.length >= maxChars) {
          out.push(text);
          text = '';
        }
      }
      if (text.length > 0) out.push(text);
      return out;
    },
  };
}

/** A json field's parsed value as its JSON text: format 1 nests the value, format 2 holds the text (checked). */
function jsonTextValue(value: unknown, kind: Kind): string {
  if (kind === Kind.Json) return JSON.stringify(value);
  if (typeof value !== 'string')
    throw new TypeError(`expected the JSON text of the value as a string, got ${JSON.stringify(value)}`);
  if (!isJsonText(value)) throw new TypeError(`not JSON text: ${JSON.stringify(value.slice(0, 80))}`);
  return value;
}

/** One archive line as an object; `DataError` `INVALID_VALUE` (with `details.line`) when it is not a JSON object. */
export function parseLine(schema: EntitySchema, line: string, index: number): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    throw new DataError(
      'INVALID_VALUE',
      `${schema.name}: line ${index + 1} is not valid JSON (${(e as Error).message})`,
      {
        cause: e,
        details: { entity: schema.name, line: index },
      },
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new DataError('INVALID_VALUE', `${schema.name}: line ${index + 1} is not a JSON object`, {
      details: { entity: schema.name, line: index },
    });
  return value as Record<string, unknown>;
}

/**
 * The records of archive lines, decoded as `importBatch` takes them (a store's record path, or naming a failure).
 * A line that is not a JSON object, or has a field the schema does not know, throws `DataError` `INVALID_VALUE`.
 */
export function decodeArchiveLines(
  schema: EntitySchema,
  lines: readonly string[],
  json: JsonEncoding,
  firstLine = 0,
): DataRecord[] {
  return lines.map((line, i) => {
    const { record, unknown } = decodeRecord(schema, parseLine(schema, line, firstLine + i), json);
    if (unknown.length)
      throw new DataError(
        'INVALID_VALUE',
        `${schema.name}: line ${firstLine + i + 1} has fields the schema does not know: ${unknown.join(', ')}`,
        { details: { entity: schema.name, line: firstLine + i, fields: unknown } },
      );
    return record;
  });
}

/** An `importJsonLineStream` that cannot stream: each batch through `importLines` in turn, the results summed. */
export async function importEachBatch(
  batches: AsyncIterable<readonly string[]>,
  importLines: (lines: readonly string[]) => Promise<ImportResult>,
): Promise<ImportResult> {
  let inserted = 0;
  let updated = 0;
  for await (const lines of batches) {
    const r = await importLines(lines);
    inserted += r.inserted;
    updated += r.updated;
  }
  return { inserted, updated };
}

/** Where a number (or other bare scalar) starting at `pos` ends: the next `,` `}` or `]`. */
function scalarEnd(line: string, pos: number): number {
  let i = pos;
  for (; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x2c || c === 0x7d || c === 0x5d) break;
  }
  return i;
}

/**
 * Where the JSON value starting at `pos` ends, or -1 when this scanner cannot delimit it (the parsing path then
 * decides). Strings hold no backslash here, so each ends at the next quote. Only the nesting is checked: the store
 * parses the JSON text itself and refuses what is not JSON.
 */
function jsonEnd(line: string, pos: number): number {
  const c = line.charCodeAt(pos);
  if (c === QUOTE) {
    const end = line.indexOf('"', pos + 1);
    return end < 0 ? -1 : end + 1;
  }
  if (c !== 0x7b && c !== 0x5b) {
    const end = scalarEnd(line, pos);
    const raw = line.slice(pos, end);
    return raw === 'true' || raw === 'false' || JSON_NUMBER.test(raw) ? end : -1;
  }
  let depth = 0;
  for (let i = pos; i < line.length; i++) {
    const ch = line.charCodeAt(i);
    if (ch === QUOTE) {
      const end = line.indexOf('"', i + 1);
      if (end < 0) return -1;
      i = end;
    } else if (ch === 0x7b || ch === 0x5b) depth++;
    else if (ch === 0x7d || ch === 0x5d) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/**
 * Copies the UTF-8 JSON text `src[from, to)` to `out` at `n` without the blanks (space, tab, newline, return) outside
 * its strings: what `JSON.stringify` would spell for text whose numbers and escapes are already canonical (what
 * PostgreSQL's jsonb and MariaDB's `JSON_COMPACT` give). Returns the new end in `out`, or -1 when the text holds a
 * control character JSON does not allow there (it is not JSON; nothing useful was written). `out` needs room for
 * `to - from` bytes.
 */
export function compactJsonBytes(src: Uint8Array, from: number, to: number, out: Uint8Array, n: number): number {
  let inString = false;
  for (let i = from; i < to; i++) {
    const b = src[i]!;
    if (b <= 0x20) {
      if (inString ? b === 0x20 : b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) {
        if (inString) out[n++] = b;
        continue;
      }
      return -1;
    }
    if (inString) {
      if (b === 0x5c) {
        if (i + 1 >= to) return -1;
        out[n++] = b;
        out[n++] = src[++i]!;
        continue;
      }
      if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    out[n++] = b;
  }
  return n;
}
