/**
 * How json fields are spelled in JSON lines: `text` (archive line format 2: a string holding the exact JSON text) or
 * `nested` (format 1 archives, and the stores that keep records as JSON lines: Redis, JSON files).
 */
export type JsonEncoding = 'text' | 'nested';

/** The archive line format written today: json fields as exact text (see {@link JsonEncoding}). */
export const LINE_FORMAT = 2;

/** The json encoding of an archive line format (1: nested, 2 and later: text). */
export function jsonEncodingOf(lineFormat: number): JsonEncoding {
  return lineFormat >= 2 ? 'text' : 'nested';
}
