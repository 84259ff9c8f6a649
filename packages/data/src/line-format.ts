/**
 * The line format `koan-jsonl`: how a record is written as one JSON line in backup archives (`entities/*.jsonl`), in
 * an adapter's JSON-lines fast paths (`exportJsonLines`, `importJsonLines`), and in the stores that keep records as
 * lines (JSON files and Redis, which spell json fields as version 1 does). A contract of its own, versioned: an archive
 * records the version its lines were written in (the manifest's `formatVersion`), and every version stays readable.
 *
 * A line is one JSON object, UTF-8, ended by `\n`, holding a record's fields by name and nothing else. Its values:
 *
 * | type      | JSON in archives                                    |
 * |-----------|-----------------------------------------------------|
 * | string, uuid | string                                           |
 * | integer   | number                                              |
 * | number    | number; `"NaN"`, `"Infinity"`, `"-Infinity"` as strings; `-0` as `"-0"` |
 * | bigint    | string of decimal digits (exact beyond 2^53; `unsigned`: up to 2^64-1) |
 * | decimal   | string, exactly as stored (`"12.50"`; PostgreSQL's `"NaN"`, `"Infinity"`, `"-Infinity"`) |
 * | boolean   | true / false                                        |
 * | datetime  | string, ISO-8601 UTC with 6 fraction digits: `"2024-05-01T10:00:00.123456Z"` (see the special forms below) |
 * | date      | string `"YYYY-MM-DD"` (same special forms)          |
 * | json      | line format 2: a string holding the value's exact JSON text (`"{\"a\":1}"`, `"null"` is JSON null); format 1 archives hold the value itself (nested) |
 * | binary    | string, base64                                      |
 * | vector    | string, base64 of little-endian float32s (bit-exact: NaN payloads, signalling NaNs and -0 included) |
 *
 * `null` is written as `null` (SQL NULL, distinct from a json field's JSON `null`, which is the text `"null"`); a
 * missing optional field is absent from the line.
 *
 * Datetimes and dates a store can hold beyond the ordinary calendar keep their exact meaning in special forms:
 * - `infinity` and `-infinity` (PostgreSQL);
 * - years outside 0001-9999 in ISO 8601's expanded form, six digits with a sign, astronomical numbering (year 0 is
 *   1 BC): `+010000-01-01T00:00:00.000000Z`, `-000043-03-15` (44 BC);
 * - MySQL zero dates, where the year is 0000 or the month or day is 00: `0000-00-00`, `2024-00-00T00:00:00.000000Z`.
 *
 * Stores that cannot hold one of them refuse it by name before anything is written (see docs/type-mapping.md).
 *
 * Writers write the canonical line, `JSON.stringify` of the encoded record with its fields in schema order
 * (`encodeRecordLine`); a store's own export writes the same text. Readers take any line that is valid JSON (another
 * field order, whitespace, escapes) and decode it the same way; a line without escapes in schema order is only read
 * faster (`scanCanonicalLine`). A field the reader's schema does not know is handed back apart (`decodeRecord`'s
 * `unknown`), for the caller's schema policy to decide.
 *
 * Versions: 1 holds a json field's value nested in the line; 2 (written today) holds its exact JSON text as a string,
 * so numbers beyond a double, duplicate keys and key order survive. Everything else is the same in both.
 */

/** The name of the line format; {@link LINE_FORMAT_ID} adds its version. */
export const LINE_FORMAT_NAME = 'koan-jsonl';

/** The version of the line format written today (readers take every version from 1 to this). */
export const LINE_FORMAT = 2;

/** The line format written today, by name and version: `koan-jsonl/2`. */
export const LINE_FORMAT_ID = `${LINE_FORMAT_NAME}/${LINE_FORMAT}` as const;

/**
 * How json fields are spelled in JSON lines: `text` (line format 2: a string holding the exact JSON text) or `nested`
 * (line format 1, and the stores that keep records as JSON lines: Redis, JSON files).
 */
export type JsonEncoding = 'text' | 'nested';

/** The json encoding of a line format version (1: nested, 2 and later: text). */
export function jsonEncodingOf(lineFormat: number): JsonEncoding {
  return lineFormat >= 2 ? 'text' : 'nested';
}
