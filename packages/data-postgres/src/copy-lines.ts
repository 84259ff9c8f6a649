/**
 * Archive JSON lines to COPY text for the restore fast paths (`importJsonLines`, `importJsonLineStream`), through
 * `@koan/data`'s line transcoder: canonical lines are cut up without building objects, any other line is parsed and
 * checked like `decodeRecord`. {@link COPY_TARGET} spells both the same way.
 */
import type { EntitySchema, FieldSpec } from '@koan/data';
import { decodeValue, type JsonEncoding, keyFieldsOf, type LineTarget, lineTranscoder } from '@koan/data/adapter-kit';
import { pgDateInput } from './pg-values.js';
import { archiveToCopyText } from './type-mapping.js';

/** COPY text format: tab-separated, `\N` for NULL, bytea as `\\x` + hex. */
export const COPY_TARGET: LineTarget = {
  null: '\\N',
  separator: '\t',
  canonical(spec: FieldSpec) {
    switch (spec.type) {
      case 'integer':
        return (raw) => String(Number(raw));
      case 'number':
        return (raw) => {
          if (raw === 'NaN' || raw === 'Infinity' || raw === '-Infinity' || raw === '-0') return raw;
          const v = Number(raw);
          return Object.is(v, -0) ? '-0' : String(v);
        };
      case 'boolean':
        return (raw) => (raw === 'true' ? 't' : 'f');
      case 'binary':
        return (raw) => `\\\\x${Buffer.from(raw, 'base64').toString('hex')}`;
      case 'vector':
        return (raw) => {
          const bytes = Buffer.from(raw, 'base64');
          if (bytes.length % 4 !== 0 || (spec.dimension !== undefined && bytes.length !== spec.dimension * 4))
            return undefined;
          return `\\\\x${bytes.toString('hex')}`;
        };
      case 'date':
      case 'datetime':
        // Special forms in PostgreSQL's spelling; a value it cannot hold takes the parsing path, which names it.
        return (raw) => {
          try {
            return pgDateInput(raw);
          } catch {
            return undefined;
          }
        };
      default:
        // Strings without escapes or control characters need no COPY escaping; json text is the line's own.
        return (raw) => raw;
    }
  },
  parsed(spec: FieldSpec) {
    return (value) => archiveToCopyText(spec, value);
  },
};

/**
 * Archive JSON lines as one COPY text body. With `lastPerKey`, an earlier line with the same key is dropped
 * (a merge statement cannot touch one row twice). `firstLine` numbers the lines in errors (`details.line`).
 */
export function archiveLinesToCopy(
  entity: EntitySchema,
  lines: readonly string[],
  lastPerKey: boolean,
  json: JsonEncoding,
  firstLine = 0,
): { text: string; count: number } {
  const transcoder = lineTranscoder(entity, COPY_TARGET, json);
  if (!lastPerKey)
    return { text: transcoder.pieces(lines, firstLine, Number.POSITIVE_INFINITY).join(''), count: lines.length };
  const keys = keyFieldsOf(entity);
  const rows: (string | undefined)[] = new Array(lines.length);
  const seen = new Map<string, number>();
  let count = lines.length;
  for (let i = 0; i < lines.length; i++) {
    rows[i] = transcoder.row(lines[i]!, firstLine + i);
    const obj = JSON.parse(lines[i]!) as Record<string, unknown>;
    const key = keys.map((k) => String(decodeValue(entity.fields[k]!, obj[k], json))).join('\u0000');
    const previous = seen.get(key);
    if (previous !== undefined) {
      rows[previous] = undefined;
      count--;
    }
    seen.set(key, i);
  }
  let text = '';
  for (const row of rows) if (row !== undefined) text += `${row}\n`;
  return { text, count };
}
