/**
 * Archive values PostgreSQL spells differently on input: the special datetime forms of `codec.ts` (expanded years,
 * BC dates), JSON arrays of format 1 archives going into array columns, and the values it cannot hold at all
 * (MySQL zero dates), which are refused with a reason instead of being changed.
 */
import { DataError } from '@koan/data';
import { isZeroDate } from '@koan/data/adapter-kit';

const EXPANDED = /^([+-])(\d{6})(-\d{2}-\d{2})(?:T(\d{2}:\d{2}:\d{2}\.\d{6})Z)?$/;

/** Why PostgreSQL cannot hold a date or datetime text, or undefined when it can. */
export function unholdableDate(text: string): string | undefined {
  if (isZeroDate(text))
    return `${JSON.stringify(text)} is a MySQL zero date (year 0000, month 00 or day 00), which PostgreSQL date and timestamp columns cannot hold: fix the value at the source or exclude the entity`;
  return undefined;
}

/**
 * PostgreSQL's input text of an archive datetime or date (canonical, `infinity`, or an expanded year): years outside
 * 1-9999 become `YYYY-MM-DD ... BC` or a 5-6 digit year. Other text is returned as it is (the server checks it).
 * Throws `UNSUPPORTED_VALUE` for a value PostgreSQL cannot hold (see {@link unholdableDate}).
 */
export function pgDateInput(text: string): string {
  const why = unholdableDate(text);
  if (why) throw new DataError('UNSUPPORTED_VALUE', why);
  const m = EXPANDED.exec(text);
  if (!m) return text;
  const astronomical = Number(`${m[1]}${m[2]}`);
  const bc = astronomical <= 0;
  const year = String(bc ? 1 - astronomical : astronomical).padStart(4, '0');
  return `${year}${m[3]}${m[4] ? ` ${m[4]}+00` : ''}${bc ? ' BC' : ''}`;
}

/**
 * The PostgreSQL array literal of a JSON array (format 1 archives held array columns as JSON): nested arrays become
 * dimensions, `null` NULL, strings quoted, numbers and booleans as written; objects as their JSON text (json[]).
 */
export function jsonArrayLiteral(value: unknown): string {
  if (!Array.isArray(value)) throw new TypeError(`expected a JSON array for an array column, got ${String(value)}`);
  const item = (v: unknown): string => {
    if (v === null) return 'NULL';
    if (Array.isArray(v)) return jsonArrayLiteral(v);
    const text = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return `"${text.replace(/[\\"]/g, (ch) => `\\${ch}`)}"`;
  };
  return `{${value.map(item).join(',')}}`;
}
