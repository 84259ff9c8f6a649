/**
 * Archive JSON lines to COPY text, for the restore fast paths (`importJsonLines`, `importJsonLineStream`).
 *
 * Most lines are canonical: written by `encodeRecordLine` or the server's own export, fields in schema order,
 * compact, no escapes. Those are converted by a scanner that cuts the values out of the line without building
 * objects ({@link compileCanonicalLine}); any other line (escapes, whitespace, other field order, unknown fields,
 * invalid JSON) goes through `JSON.parse` and the checks of `decodeValue` ({@link archiveToCopyText}), which name
 * what is wrong. Both give the server the same values.
 */
import { DataError, type DataRecord, decodeRecord, type EntitySchema, type FieldSpec, keyFieldsOf } from '@koan/data';
import { archiveToCopyText } from './type-mapping.js';

type Fields = readonly (readonly [string, FieldSpec])[];

function parseArchiveLine(entity: EntitySchema, line: string, index: number): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    throw new DataError(
      'INVALID_VALUE',
      `${entity.name}: line ${index + 1} is not valid JSON (${(e as Error).message})`,
      {
        cause: e,
        details: { entity: entity.name, line: index },
      },
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new DataError('INVALID_VALUE', `${entity.name}: line ${index + 1} is not a JSON object`, {
      details: { entity: entity.name, line: index },
    });
  return value as Record<string, unknown>;
}

/** The records of archive lines, decoded as `importBatch` takes them (for the record path and for naming failures). */
export function decodeArchiveLines(entity: EntitySchema, lines: readonly string[]): DataRecord[] {
  return lines.map((line, i) => {
    const { record, unknown } = decodeRecord(entity, parseArchiveLine(entity, line, i));
    if (unknown.length) throw unknownFields(entity, unknown, i);
    return record;
  });
}

function unknownFields(entity: EntitySchema, names: readonly string[], index: number): DataError {
  return new DataError(
    'INVALID_VALUE',
    `${entity.name}: line ${index + 1} has fields the schema does not know: ${names.join(', ')}`,
    { details: { entity: entity.name, line: index, fields: [...names] } },
  );
}

/** One line through `JSON.parse` and `decodeValue`'s checks. */
function parsedLineToCopy(entity: EntitySchema, fields: Fields, line: string, index: number): string {
  const obj = parseArchiveLine(entity, line, index);
  let row = '';
  let present = 0;
  for (let f = 0; f < fields.length; f++) {
    const [name, spec] = fields[f]!;
    const value = obj[name];
    if (value !== undefined) present++;
    try {
      row += f === 0 ? archiveToCopyText(spec, value) : `\t${archiveToCopyText(spec, value)}`;
    } catch (e) {
      throw new DataError('INVALID_VALUE', `${entity.name}.${name}: ${(e as Error).message}`, {
        cause: e,
        details: { entity: entity.name, field: name, line: index },
      });
    }
  }
  const names = Object.keys(obj);
  if (present !== names.length)
    throw unknownFields(
      entity,
      names.filter((n) => !Object.hasOwn(entity.fields, n)),
      index,
    );
  return row;
}

/**
 * Archive JSON lines as one COPY text body. With `lastPerKey`, an earlier line with the same key is dropped
 * (a merge statement cannot touch one row twice). `firstLine` numbers the lines in errors (`details.line`).
 */
export function archiveLinesToCopy(
  entity: EntitySchema,
  fields: Fields,
  lines: readonly string[],
  lastPerKey: boolean,
  firstLine = 0,
): { text: string; count: number } {
  if (!lastPerKey) {
    const canonical = compileCanonicalLine(entity, fields);
    let text = '';
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      text += `${canonical(line) ?? parsedLineToCopy(entity, fields, line, firstLine + i)}\n`;
    }
    return { text, count: lines.length };
  }
  const keys = keyFieldsOf(entity);
  const rows: (string | undefined)[] = new Array(lines.length);
  const seen = new Map<string, number>();
  let count = lines.length;
  for (let i = 0; i < lines.length; i++) {
    const row = parsedLineToCopy(entity, fields, lines[i]!, firstLine + i);
    const obj = JSON.parse(lines[i]!) as Record<string, unknown>;
    const key = keys.length === 1 ? String(obj[keys[0]!]) : keys.map((k) => String(obj[k])).join('\u0000');
    const previous = seen.get(key);
    if (previous !== undefined) {
      rows[previous] = undefined;
      count--;
    }
    seen.set(key, i);
    rows[i] = row;
  }
  let text = '';
  for (const row of rows) if (row !== undefined) text += `${row}\n`;
  return { text, count };
}

enum Kind {
  /** string, uuid, decimal, date, datetime: the string's characters are the COPY text. */
  Text,
  Bigint,
  Integer,
  Number,
  Boolean,
  Json,
  Binary,
  Vector,
}

const KINDS: Readonly<Record<FieldSpec['type'], Kind>> = {
  string: Kind.Text,
  uuid: Kind.Text,
  decimal: Kind.Text,
  date: Kind.Text,
  datetime: Kind.Text,
  bigint: Kind.Bigint,
  integer: Kind.Integer,
  number: Kind.Number,
  boolean: Kind.Boolean,
  json: Kind.Json,
  binary: Kind.Binary,
  vector: Kind.Vector,
};

/** A backslash (an escape) or a raw control character (invalid JSON): the line takes the parsing path. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const NOT_PLAIN = /[\u0000-\u001f\\]/;
const JSON_INTEGER = /^-?(0|[1-9]\d*)$/;
const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
const SPECIAL_NUMBERS = new Set(['NaN', 'Infinity', '-Infinity', '-0']);
const QUOTE = 0x22;

const canonicalCache = new WeakMap<EntitySchema, (line: string) => string | undefined>();

/**
 * A converter for canonical lines: `{"a":1,"b":"x"}`, fields in schema order (absent optional ones skipped), no
 * whitespace, no backslash and no control character anywhere. Returns `undefined` for any other line, and for a
 * value that would fail `decodeValue`, so the caller's parsing path reports it. Without backslashes every `"` in
 * the line delimits a string, so values are cut out with `indexOf`; the COPY text of a string is its characters.
 */
export function compileCanonicalLine(entity: EntitySchema, fields: Fields): (line: string) => string | undefined {
  const cached = canonicalCache.get(entity);
  if (cached) return cached;
  const steps = fields.map(([name, spec]) => ({
    head: `${JSON.stringify(name)}:`,
    next: `,${JSON.stringify(name)}:`,
    optional: spec.optional === true,
    kind: KINDS[spec.type],
    dimension: spec.type === 'vector' ? spec.dimension : undefined,
  }));
  const convert = (line: string): string | undefined => {
    const n = line.length;
    if (n < 2 || line.charCodeAt(0) !== 0x7b || line.charCodeAt(n - 1) !== 0x7d || NOT_PLAIN.test(line))
      return undefined;
    let pos = 1;
    let out = '';
    let first = true;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      const prefix = first ? step.head : step.next;
      if (!line.startsWith(prefix, pos)) {
        if (!step.optional) return undefined;
        out += i === 0 ? '\\N' : '\t\\N';
        continue;
      }
      first = false;
      pos += prefix.length;
      let text: string;
      const c = line.charCodeAt(pos);
      if (c === 0x6e) {
        if (!line.startsWith('null', pos)) return undefined;
        text = '\\N';
        pos += 4;
      } else
        switch (step.kind) {
          case Kind.Text: {
            if (c !== QUOTE) return undefined;
            const end = line.indexOf('"', pos + 1);
            if (end < 0) return undefined;
            text = line.slice(pos + 1, end);
            pos = end + 1;
            break;
          }
          case Kind.Bigint: {
            if (c !== QUOTE) return undefined;
            const end = line.indexOf('"', pos + 1);
            if (end < 0) return undefined;
            text = line.slice(pos + 1, end);
            if (!/^-?\d+$/.test(text)) return undefined;
            pos = end + 1;
            break;
          }
          case Kind.Integer:
          case Kind.Number: {
            if (c === QUOTE) {
              if (step.kind === Kind.Integer) return undefined;
              const end = line.indexOf('"', pos + 1);
              if (end < 0) return undefined;
              text = line.slice(pos + 1, end);
              if (!SPECIAL_NUMBERS.has(text)) return undefined;
              pos = end + 1;
              break;
            }
            const end = scalarEnd(line, pos);
            const raw = line.slice(pos, end);
            if (step.kind === Kind.Integer) {
              if (!JSON_INTEGER.test(raw) || !Number.isSafeInteger(Number(raw))) return undefined;
              text = String(Number(raw));
            } else {
              if (!JSON_NUMBER.test(raw)) return undefined;
              const v = Number(raw);
              text = Object.is(v, -0) ? '-0' : String(v);
            }
            pos = end;
            break;
          }
          case Kind.Boolean:
            if (line.startsWith('true', pos)) {
              text = 't';
              pos += 4;
            } else if (line.startsWith('false', pos)) {
              text = 'f';
              pos += 5;
            } else return undefined;
            break;
          case Kind.Json: {
            const end = jsonEnd(line, pos);
            if (end < 0) return undefined;
            text = line.slice(pos, end);
            pos = end;
            break;
          }
          case Kind.Binary:
          case Kind.Vector: {
            if (c !== QUOTE) return undefined;
            const end = line.indexOf('"', pos + 1);
            if (end < 0) return undefined;
            const bytes = Buffer.from(line.slice(pos + 1, end), 'base64');
            if (
              step.kind === Kind.Vector &&
              (bytes.length % 4 !== 0 || (step.dimension !== undefined && bytes.length !== step.dimension * 4))
            )
              return undefined;
            text = `\\\\x${bytes.toString('hex')}`;
            pos = end + 1;
            break;
          }
        }
      out += i === 0 ? text : `\t${text}`;
    }
    return pos === n - 1 ? out : undefined;
  };
  canonicalCache.set(entity, convert);
  return convert;
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
 * Where the JSON value starting at `pos` ends, or -1 if it is not one this scanner can delimit (the parsing path
 * then decides). Strings hold no backslash here, so each ends at the next quote.
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
