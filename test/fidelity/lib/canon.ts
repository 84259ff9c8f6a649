/**
 * One canonical text per value, so a value read from one store can be compared with the same value read from another.
 * The *source* column decides how (its {@link ValueKind}); each side's cell is the store's own text of the value
 * (PostgreSQL `::text`, MariaDB `CAST(... AS CHAR)`, hex for binary) or SQLite's stored value. A cell that does not
 * parse as the kind expects comes out as `?<text>`, so it never equals a proper value by accident.
 *
 * Equal canonical texts mean the same value: decimals numerically exact (`1.10` = `1.1`), floats as the same IEEE value
 * (FLOAT: the same float32), datetimes to the microsecond in UTC with their special forms (infinity, BC, year 10000+,
 * MySQL zero dates), JSON as its exact text (key order, duplicates, whitespace and number spellings count), arrays
 * element by element, text code unit by code unit.
 */
import type { ValueKind } from './catalog.js';

/** A value as read: text (PostgreSQL, MariaDB, SQLite TEXT), hex (binary), or a SQLite INTEGER / REAL. */
export interface Raw {
  readonly form: 'text' | 'hex' | 'int' | 'real';
  readonly value: string;
}

/** A SQLite value (better-sqlite3 with safe integers) as a {@link Raw}. */
export function rawOfSqlite(v: unknown): Raw | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return { form: 'int', value: v.toString() };
  if (typeof v === 'number') return { form: 'real', value: Object.is(v, -0) ? '-0' : String(v) };
  if (Buffer.isBuffer(v)) return { form: 'hex', value: v.toString('hex') };
  return { form: 'text', value: String(v) };
}

/** The exact decimal a text denotes, spelled one way: no exponent, no padding zeros, no sign on zero. */
export function exactDecimal(text: string): string | undefined {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const [, sign, int = '', frac = '', exp = '0'] = m;
  const digits = int + frac;
  const point = int.length + Number(exp);
  const padded =
    point < 0
      ? '0'.repeat(-point) + digits
      : point > digits.length
        ? digits + '0'.repeat(point - digits.length)
        : digits;
  const at = Math.max(point, 0);
  const whole = padded.slice(0, at).replace(/^0+/, '') || '0';
  const fraction = padded.slice(at).replace(/0+$/, '');
  const body = fraction ? `${whole}.${fraction}` : whole;
  return body === '0' ? '0' : `${sign === '-' ? '-' : ''}${body}`;
}

const SPECIAL_NUMBERS: Record<string, string> = {
  nan: 'NaN',
  infinity: 'Infinity',
  '+infinity': 'Infinity',
  inf: 'Infinity',
  '-infinity': '-Infinity',
  '-inf': '-Infinity',
};

function floatText(value: string, single: boolean): string | undefined {
  const special = SPECIAL_NUMBERS[value.toLowerCase()];
  const n = special ? Number(special) : Number(value);
  if (!special && (value.trim() === '' || Number.isNaN(n))) return undefined;
  const v = single ? Math.fround(n) : n;
  return Object.is(v, -0) ? '-0' : String(v);
}

/**
 * Canonical datetime or date: `[+-]YYYYYY-MM-DD[THH:MM:SS.ffffff]`, astronomical years (1 BC = 0), UTC; `infinity`,
 * `-infinity`. Accepts PostgreSQL's ISO output (`... BC`, `+00` offsets), MariaDB's (zero dates included) and the
 * archive's canonical form. Non-zero offsets are applied.
 */
function temporal(text: string, withTime: boolean): string | undefined {
  const t = text.trim();
  if (t === 'infinity' || t === '-infinity') return t;
  const m =
    /^([+-]?\d{4,6})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?( BC)?$/.exec(
      t,
    );
  if (!m) return undefined;
  const [, y, mo, d, hh = '00', mi = '00', ss = '00', frac = '', zone = 'Z', bc] = m;
  let year = Number(y);
  if (bc) year = 1 - year;
  let micros = BigInt(`${hh}`) * 3_600_000_000n + BigInt(mi) * 60_000_000n + BigInt(ss) * 1_000_000n;
  micros += BigInt((frac + '000000').slice(0, 6));
  let day = { year, month: Number(mo), day: Number(d) };
  const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone);
  const offset = z ? (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3] ?? 0)) : 0;
  if (offset !== 0) {
    // Real calendar dates only (zero dates carry no offset): shift through the epoch day number.
    micros -= BigInt(offset) * 60_000_000n;
    const dayMicros = 86_400_000_000n;
    let shift = micros / dayMicros;
    micros %= dayMicros;
    if (micros < 0n) {
      micros += dayMicros;
      shift -= 1n;
    }
    const date = new Date(0);
    date.setUTCFullYear(day.year, day.month - 1, day.day + Number(shift));
    day = { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
  }
  const sign = day.year < 0 ? '-' : '+';
  const date = `${sign}${String(Math.abs(day.year)).padStart(6, '0')}-${String(day.month).padStart(2, '0')}-${String(day.day).padStart(2, '0')}`;
  if (!withTime) return micros === 0n ? date : undefined;
  const us = micros.toString().padStart(12, '0');
  const total = Number(micros / 1_000_000n);
  const hms = [Math.floor(total / 3600), Math.floor((total % 3600) / 60), total % 60]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
  return `${date}T${hms}.${us.slice(-6)}Z`;
}

type Leaf = string | null;
type Nested = Leaf | Nested[];

/** A PostgreSQL array literal (`{1,NULL,"a,b"}`, `[0:2]={7,8,9}`): its bounds prefix and nested string/null leaves. */
export function parsePgArray(text: string): { bounds: string; items: Nested[] } | undefined {
  let s = text;
  let bounds = '';
  if (s.startsWith('[')) {
    const eq = s.indexOf('=');
    if (eq < 0) return undefined;
    bounds = s.slice(0, eq);
    s = s.slice(eq + 1);
  }
  let i = 0;
  const list = (): Nested[] => {
    if (s[i] !== '{') throw new Error('expected {');
    i++;
    const out: Nested[] = [];
    if (s[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      if (s[i] === '{') out.push(list());
      else if (s[i] === '"') {
        let v = '';
        i++;
        while (s[i] !== '"') {
          if (s[i] === '\\') i++;
          if (i >= s.length) throw new Error('unterminated');
          v += s[i++];
        }
        i++;
        out.push(v);
      } else {
        let v = '';
        while (i < s.length && s[i] !== ',' && s[i] !== '}') v += s[i++];
        out.push(v.trim().toUpperCase() === 'NULL' ? null : v.trim());
      }
      if (s[i] === ',') i++;
      else if (s[i] === '}') {
        i++;
        return out;
      } else throw new Error(`unexpected ${s[i]}`);
    }
  };
  try {
    const items = list();
    return i === s.length ? { bounds, items } : undefined;
  } catch {
    return undefined;
  }
}

/** JSON as nested arrays of leaves: numbers keep their exact text (`#12.50`), strings as they are, other values tagged. */
export function parseJsonArray(text: string): Nested[] | undefined {
  let i = 0;
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++;
  };
  const value = (): Nested => {
    ws();
    const c = text[i];
    if (c === '[') {
      i++;
      const out: Nested[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return out;
      }
      for (;;) {
        out.push(value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return out;
        } else throw new Error('bad array');
      }
    }
    if (c === '"') {
      const start = i;
      i++;
      while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      return JSON.parse(text.slice(start, i)) as string;
    }
    const m = /^(null|true|false|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i));
    if (!m) throw new Error('bad value');
    i += m[0].length;
    return m[0] === 'null' ? null : `#${m[0]}`;
  };
  try {
    const v = value();
    ws();
    return i === text.length && Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function arrayCanon(raw: Raw, numeric: boolean): string | undefined {
  const leaf = (v: Nested): Nested => {
    if (Array.isArray(v)) return v.map(leaf);
    if (v === null) return null;
    const number = v.startsWith('#') ? v.slice(1) : undefined;
    if (numeric) return exactDecimal(number ?? v) ?? `?${v}`;
    return number === undefined ? v : `#${number}`;
  };
  if (raw.form !== 'text') return undefined;
  const pg = raw.value.startsWith('{') || /^\[-?\d+:-?\d+\]/.test(raw.value) ? parsePgArray(raw.value) : undefined;
  if (pg) return `${pg.bounds}${JSON.stringify(pg.items.map(leaf))}`;
  const json = parseJsonArray(raw.value);
  return json ? JSON.stringify(json.map(leaf)) : undefined;
}

function integer(raw: Raw): string | undefined {
  const v = raw.value.trim();
  if (raw.form === 'hex') return v === '' ? undefined : BigInt(`0x${v}`).toString();
  if (raw.form === 'real') return Number.isInteger(Number(v)) ? BigInt(Number(v)).toString() : undefined;
  if (/^[+-]?\d+$/.test(v)) return BigInt(v).toString();
  if (/^(t|true)$/i.test(v)) return '1';
  if (/^(f|false)$/i.test(v)) return '0';
  return undefined;
}

function canonOrUndefined(kind: ValueKind, raw: Raw): string | undefined {
  const v = raw.value;
  switch (kind) {
    case 'int':
      return integer(raw);
    case 'mybits':
      return raw.form === 'text' && /^[01]+$/.test(v) && v.length > 1 ? BigInt(`0b${v}`).toString() : integer(raw);
    case 'pgbits':
      if (raw.form === 'text' && /^[01]*$/.test(v)) return `b${v}`;
      return integer(raw) === undefined ? undefined : `b${BigInt(integer(raw)!).toString(2)}`;
    case 'decimal':
      return SPECIAL_NUMBERS[v.toLowerCase()] ?? exactDecimal(v);
    case 'money': {
      const m = /^(-?)\$?(-?)([\d,]*\.?\d*)$/.exec(v.trim());
      return m ? exactDecimal(`${m[1] || m[2]}${m[3]!.replaceAll(',', '')}`) : undefined;
    }
    case 'float4':
    case 'float8':
      // SQLite keeps NaN and -0 as the 8 bytes of the double, little-endian (docs/type-mapping.md).
      if (raw.form === 'hex') {
        if (v.length !== 16) return undefined;
        const d = Buffer.from(v, 'hex').readDoubleLE(0);
        return floatText(Object.is(d, -0) ? '-0' : String(d), kind === 'float4'); // String(-0) is "0"
      }
      return floatText(v, kind === 'float4');
    case 'bool':
      return /^(t|true|1)$/i.test(v) ? 'true' : /^(f|false|0)$/i.test(v) ? 'false' : undefined;
    case 'timestamp':
    case 'date':
      return raw.form === 'text' ? temporal(v, kind === 'timestamp') : undefined;
    case 'json':
      return raw.form === 'hex' ? Buffer.from(v, 'hex').toString('utf8') : raw.form === 'text' ? v : undefined;
    case 'binary':
      return raw.form === 'hex' ? v.toLowerCase() : undefined;
    case 'uuid':
      return raw.form === 'text' ? v.toLowerCase() : undefined;
    case 'array-num':
    case 'array-text':
      return arrayCanon(raw, kind === 'array-num');
    default:
      return raw.form === 'hex' ? undefined : v;
  }
}

/** The canonical text of a value of `kind` (null for SQL NULL); `?<form>:<text>` when the cell is not such a value. */
export function canon(kind: ValueKind, raw: Raw | null): string | null {
  if (raw === null) return null;
  return canonOrUndefined(kind, raw) ?? `?${raw.form}:${raw.value}`;
}
