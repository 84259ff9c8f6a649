/**
 * Archive JSON lines of MariaDB rows, written by the client from the columns' text.
 *
 * The server's scan is the critical path of a MariaDB backup: one thread reads the table and evaluates the SELECT
 * while the client mostly waits. Building the whole JSON line on the server (`JSON_QUOTE`, `DATE_FORMAT`,
 * `COALESCE` per field, one `CONCAT`) took ~3.9 s of server CPU per million rows of the benchmark; selecting the
 * columns as they are takes ~1.8 s (what `mysqldump`'s `SELECT` costs it), and the client writes the line on its own
 * core, byte-equal to `encodeRecordLine` (line format 2) of what `exportEntity` reads with `exactJson`:
 * - strings are quoted and escaped the way `JSON.stringify` does; a json field is the JSON string of the column's
 *   exact text (blanks, key order, duplicate keys and big numbers as stored);
 * - datetimes (`2024-05-01 10:00:00.000001`, UTC: the session's time zone, any precision; zero dates too) become
 *   `"2024-05-01T10:00:00.000001Z"`; binaries and vectors become base64;
 * - uuid, bigint, decimal and date text is quoted, integers written as they are, booleans as the server's
 *   `'true'`/`'false'` (a `CASE`, so any column type that MariaDB takes as a truth value works);
 * - each column is selected with its plan's expression (`mysql-values.ts`): BIT as its digits, YEAR and ZEROFILL
 *   integers without leading zeros, spatial values as their bytes;
 * - NULL is `null`, or leaves an optional field out. A NULL in a field that is neither nullable nor optional (a table
 *   changed outside Koan) fails the export naming the field, rather than writing an archive that cannot be restored.
 *
 * Text columns reach the client in the connection's charset (utf8mb4), whatever charset they are stored in.
 */
import { DataError, type EntitySchema, type FieldSpec } from '@koan/data';
import { STREAM_PIECE_BYTES } from '@koan/data/adapter-kit';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

enum Kind {
  /** JSON text as the server sends it (integers, booleans). */
  Raw,
  /** Text that needs no escaping (uuid, bigint, decimal, date), quoted. */
  Quoted,
  /** `YYYY-MM-DD HH:MM:SS[.ffffff]`, written `"YYYY-MM-DDTHH:MM:SS.ffffffZ"`. */
  Datetime,
  /** Bytes, written as a base64 string. */
  Base64,
  /** UTF-8 text (a json field's exact JSON text too), quoted and escaped. */
  String,
}

interface Step {
  readonly name: string;
  /** `"name":` as UTF-8. */
  readonly head: Buffer;
  readonly kind: Kind;
  /** What NULL means: leave the field out, write null, or fail (neither nullable nor optional). */
  readonly whenNull: 'absent' | 'null' | 'refuse';
}

/** A row as the query returns it: each column's bytes (`typeCast: field => field.buffer()`), `null` for NULL. */
export type RowValues = readonly (Buffer | null)[];

export interface RowLines {
  /** The SELECT list: one column per field, in schema order. */
  readonly select: string;
  /** Appends the archive line of `row` and a newline to `out`. */
  render(row: RowValues, out: LineChunks): void;
}

/**
 * Whether MariaDB's text of every field of `schema` can be written exactly: not DOUBLE fields (MariaDB's float text is
 * not JavaScript's shortest form), nor optional nullable ones (absent and null share one column).
 */
export function rowLinesSupported(schema: EntitySchema): boolean {
  return Object.entries(schema.fields).every(
    ([name, spec]) => spec.type !== 'number' && !(spec.optional && spec.nullable && name !== schema.key),
  );
}

function kindOf(spec: FieldSpec): Kind {
  switch (spec.type) {
    case 'string':
    case 'json':
      return Kind.String;
    case 'integer':
    case 'boolean':
      return Kind.Raw;
    case 'datetime':
      return Kind.Datetime;
    case 'binary':
    case 'vector':
      return Kind.Base64;
    default: // uuid, bigint, decimal, date: their text needs no escaping
      return Kind.Quoted;
  }
}

/** Names, commas, quotes, `null`, the datetime's `T`/`Z`/padding, braces and the newline, beyond the values' bytes. */
const PER_FIELD = 16;

/**
 * The lines of `schema` (see {@link rowLinesSupported}) from its columns' text; `selects` are the fields' SELECT
 * expressions (in schema order), `where` names the rows in errors.
 */
export function rowLines(
  schema: EntitySchema,
  selects: readonly string[],
  where: { readonly table: string; readonly set: string },
): RowLines {
  const steps: Step[] = [];
  const columns: string[] = [];
  for (const [i, [name, spec]] of Object.entries(schema.fields).entries()) {
    const c = selects[i]!;
    columns.push(
      spec.type === 'boolean' ? `CASE WHEN ${c} IS NULL THEN NULL WHEN ${c} THEN 'true' ELSE 'false' END` : c,
    );
    steps.push({
      name,
      head: Buffer.from(`${JSON.stringify(name)}:`),
      kind: kindOf(spec),
      whenNull: spec.optional ? 'absent' : spec.nullable ? 'null' : 'refuse',
    });
  }
  const fixed = steps.reduce((sum, s) => sum + s.head.length + PER_FIELD, 4);
  const bad = (why: string) =>
    new DataError('INVALID_VALUE', `[mysql] ${schema.name} (table ${where.table}, set "${where.set}"): ${why}.`, {
      details: { entity: schema.name, set: where.set, table: where.table },
    });
  return {
    select: columns.join(', '),
    render(row, chunks) {
      // Byte loops, not Buffer.copy: the pieces are short, and a native call per piece cost more than the copying.
      const out = chunks.reserve(lineBound(row) + fixed);
      let n = chunks.length;
      let first = true;
      out[n++] = 0x7b; // {
      for (let f = 0; f < steps.length; f++) {
        const step = steps[f]!;
        const v = row[f];
        if (v === null || v === undefined) {
          if (step.whenNull === 'absent') continue;
          if (step.whenNull === 'refuse')
            throw bad(
              `a row holds NULL in field ${step.name}, which is neither nullable nor optional. Fix those rows, or declare the field .nullable() or .optional()`,
            );
        }
        if (!first) out[n++] = 0x2c; // ,
        first = false;
        const head = step.head;
        for (let i = 0; i < head.length; i++) out[n++] = head[i]!;
        if (v === null || v === undefined) {
          for (let i = 0; i < NULL_TEXT.length; i++) out[n++] = NULL_TEXT[i]!;
          continue;
        }
        switch (step.kind) {
          case Kind.String:
            n = quoted(v, out, n);
            break;
          case Kind.Raw:
            for (let i = 0; i < v.length; i++) out[n++] = v[i]!;
            break;
          case Kind.Quoted:
            out[n++] = QUOTE;
            for (let i = 0; i < v.length; i++) out[n++] = v[i]!;
            out[n++] = QUOTE;
            break;
          case Kind.Base64:
            out[n++] = QUOTE;
            n += out.write(v.toString('base64'), n, 'latin1');
            out[n++] = QUOTE;
            break;
          case Kind.Datetime: {
            const length = v.length;
            if ((length !== 19 && (length < 21 || length > 26)) || v[10] !== 0x20)
              throw bad(`field ${step.name} is not a datetime: ${v.toString('latin1', 0, 40)}`);
            out[n++] = QUOTE;
            for (let i = 0; i < 10; i++) out[n++] = v[i]!;
            out[n++] = 0x54; // T
            for (let i = 11; i < 19; i++) out[n++] = v[i]!;
            out[n++] = 0x2e; // .
            for (let i = 20; i < length; i++) out[n++] = v[i]!;
            for (let i = length === 19 ? 0 : length - 20; i < 6; i++) out[n++] = 0x30;
            out[n++] = 0x5a; // Z
            out[n++] = QUOTE;
            break;
          }
        }
      }
      out[n++] = 0x7d; // }
      out[n++] = 0x0a;
      // Writes past the end of a buffer are dropped silently: never hand on a line that did not fit.
      if (n > out.length) throw bad(`a line outgrew the ${out.length - chunks.length} bytes reserved for it`);
      chunks.commit(n);
    },
  };
}

const NULL_TEXT = Buffer.from('null');

/** Rows from this size on are scanned for a tight bound on their line, instead of assuming every byte escaped. */
const LARGE_ROW = 16 * 1024;

/**
 * At least the bytes the values of `row` take in its line: a byte JSON escapes becomes at most 6 (`\u00XX`), a
 * byte of a malformed UTF-8 sequence at most 3 (U+FFFD), base64 4 per 3; every other byte stays one.
 */
function lineBound(row: RowValues): number {
  let size = 0;
  for (const v of row) if (v) size += v.length;
  if (size < LARGE_ROW) return 6 * size;
  let bound = 0;
  for (const v of row) {
    if (!v) continue;
    bound += v.length + Math.ceil(v.length / 3) + 4;
    for (let i = 0; i < v.length; i++) {
      const b = v[i]!;
      if (b < 0x20 || b === QUOTE || b === BACKSLASH) bound += 5;
      else if (b >= 0x80) bound += 2;
    }
  }
  return bound;
}

/** `JSON.stringify`'s escape of each byte below 0x20 (`\n`, `\u0001`...), as bytes. */
const CONTROL_ESCAPES: readonly Buffer[] = Array.from({ length: 0x20 }, (_, b) =>
  Buffer.from(JSON.stringify(String.fromCharCode(b)).slice(1, -1), 'latin1'),
);

/**
 * The JSON string of the UTF-8 bytes `v` written at `out[n]`, as `JSON.stringify` spells it (quote, backslash and
 * control characters escaped; every other byte as it is: the server sends valid UTF-8); the new end. A json field's
 * text is full of quotes, so escaping is done here byte by byte rather than through a JavaScript string.
 */
function quoted(v: Buffer, out: Buffer, n: number): number {
  out[n++] = QUOTE;
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!;
    if (b >= 0x20 && b !== QUOTE && b !== BACKSLASH) out[n++] = b;
    else if (b === QUOTE || b === BACKSLASH) {
      out[n++] = BACKSLASH;
      out[n++] = b;
    } else {
      const control = CONTROL_ESCAPES[b]!;
      for (let j = 0; j < control.length; j++) out[n++] = control[j]!;
    }
  }
  out[n++] = QUOTE;
  return n;
}

/**
 * Lines gathered into chunks of about {@link STREAM_PIECE_BYTES} (whole lines each; `pieceBytes`, when a smaller byte
 * budget asks for less: a chunk closes at the line that reaches it), written in place: `reserve` returns a buffer
 * with room for the next line at `length`, and `commit` ends that line. Filled chunks wait in `full` for the reader.
 */
export class LineChunks {
  readonly #piece: number;
  #buffer = Buffer.allocUnsafe(0);
  length = 0;
  readonly full: Buffer[] = [];

  constructor(pieceBytes = STREAM_PIECE_BYTES) {
    this.#piece = Math.max(1, Math.min(STREAM_PIECE_BYTES, pieceBytes));
  }

  reserve(bytes: number): Buffer {
    if (this.length + bytes <= this.#buffer.length) return this.#buffer;
    this.end();
    this.#buffer = Buffer.allocUnsafe(Math.max(this.#piece + 8 * 1024, bytes));
    return this.#buffer;
  }

  /** Ends the line written up to `length`. */
  commit(length: number): void {
    this.length = length;
    if (length >= this.#piece) this.end();
  }

  /** Closes the chunk being written, if it holds a line. */
  end(): void {
    if (this.length > 0) this.full.push(this.#buffer.subarray(0, this.length));
    this.#buffer = Buffer.allocUnsafe(0);
    this.length = 0;
  }
}
