import { MAX_BATCH_BYTES, parseByteSize } from '@koan/data/adapter-kit';
import { parseIsoInstant } from '@koan/data-backup/catalog';
import { BATCH_SIZE } from '@koan/data-backup/schemas';
import type { ArgsDef } from 'citty';
import { usageError } from './_errors.js';

/** Options every command takes. */
export const globalArgs = {
  config: {
    type: 'string',
    description: 'Config file (default: koan.config.json in --cwd, or $KOAN_CONFIG)',
    valueHint: 'file',
  },
  cwd: {
    type: 'string',
    description: 'Directory the app runs in: config and relative paths resolve here',
    valueHint: 'dir',
  },
  json: { type: 'boolean', description: 'Machine output: one JSON document on stdout' },
} as const satisfies ArgsDef;

/** Options of commands that work with entities. */
export const entityArgs = {
  import: {
    type: 'string',
    description: 'Module that defines entities with defineEntity (repeatable), e.g. ./dist/entities.js',
    valueHint: 'module',
  },
} as const satisfies ArgsDef;

export const progressArgs = {
  progress: { type: 'boolean', description: 'Progress lines on stderr even when not on a terminal' },
} as const satisfies ArgsDef;

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

interface FlagInfo {
  readonly name: string;
  readonly takesValue: boolean;
}

function flagTable(def: ArgsDef): Map<string, FlagInfo> {
  const table = new Map<string, FlagInfo>();
  for (const [name, arg] of Object.entries(def)) {
    if (arg.type === 'positional') continue;
    const takesValue = arg.type === 'string' || arg.type === 'enum';
    const alias = 'alias' in arg ? arg.alias : undefined;
    const aliases = alias === undefined ? [] : Array.isArray(alias) ? alias : [alias];
    for (const n of [name, kebab(name), camel(name), ...aliases]) {
      table.set(n, { name, takesValue });
      if (!takesValue) table.set(`no-${n}`, { name, takesValue: false });
    }
  }
  return table;
}

/**
 * Rejects what citty's lenient parser would silently ignore: unknown options, missing option values
 * and extra positional arguments.
 */
export function checkArgs(rawArgs: readonly string[], def: ArgsDef, command: string): void {
  const flags = flagTable(def);
  const positionals = Object.values(def).filter((a) => a.type === 'positional').length;
  let seen = 0;
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === '--') {
      seen += rawArgs.length - i - 1;
      break;
    }
    if (arg.startsWith('-') && arg !== '-') {
      const [flag, inline] = splitFlag(arg);
      const info = flags.get(flag);
      if (!info)
        throw usageError(
          `Unknown option ${arg.split('=')[0]} for \`koan-backup ${command}\`.`,
          `See \`koan-backup ${command} --help\` for its options.`,
        );
      if (info.takesValue && inline === undefined) {
        const next = rawArgs[i + 1];
        if (next === undefined || (next.startsWith('--') && next.length > 2))
          throw usageError(`Option --${kebab(info.name)} needs a value.`, `See \`koan-backup ${command} --help\`.`);
        i++;
      }
      continue;
    }
    seen++;
  }
  if (seen > positionals)
    throw usageError(
      `Too many arguments for \`koan-backup ${command}\` (expected ${positionals || 'none'}).`,
      `See \`koan-backup ${command} --help\`; quote values that contain spaces.`,
    );
}

function splitFlag(arg: string): [string, string | undefined] {
  const body = arg.replace(/^-{1,2}/, '');
  const eq = body.indexOf('=');
  return eq === -1 ? [body, undefined] : [body.slice(0, eq), body.slice(eq + 1)];
}

/** Every value of a repeatable option (`--tag a --tag b`, `--tag a,b`), in order, without empties. */
export function listOption(rawArgs: readonly string[], name: string): string[] {
  const names = new Set([name, kebab(name), camel(name)]);
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === '--') break;
    if (!arg.startsWith('-')) continue;
    const [flag, inline] = splitFlag(arg);
    if (!names.has(flag)) continue;
    const value = inline ?? rawArgs[++i];
    if (value === undefined) continue;
    for (const part of value.split(',')) if (part.trim()) out.push(part.trim());
  }
  return out;
}

export function optionalList(rawArgs: readonly string[], name: string): string[] | undefined {
  const values = listOption(rawArgs, name);
  return values.length ? values : undefined;
}

/** A whole number from `min` to `max`; `hint` says what the value means (shown on a `Hint:` line when it is refused). */
export function intOption(
  value: string | undefined,
  name: string,
  min: number,
  max: number,
  hint?: string,
): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
    throw usageError(
      `--${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(value)}.`,
      hint ?? `For example --${name} ${min}.`,
    );
  return n;
}

/** `--batch-size`: records per query (backup) or per written batch (restore), within the library's `BATCH_SIZE`. */
export function batchSizeOption(
  value: string | undefined,
  per: 'read per query' | 'written per batch',
): number | undefined {
  return intOption(
    value,
    'batch-size',
    BATCH_SIZE.min,
    BATCH_SIZE.max,
    `Records ${per}, e.g. --batch-size 1000 (the default, or Koan.Backup.DefaultBatchSize).`,
  );
}

/**
 * `--batch-bytes`: bytes per batch, as a number of bytes or a size (`8MiB`, `512KiB`, `64KB`), 1 byte to 1 GiB: a batch
 * closes at `--batch-size` records or at this size, whichever comes first. Parsed by the library's rule.
 */
export function batchBytesOption(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const bytes = parseByteSize(value);
  if (bytes === undefined || !Number.isInteger(bytes) || bytes < 1 || bytes > MAX_BATCH_BYTES)
    throw usageError(
      `--batch-bytes must be a size from 1 byte to 1GiB, such as 8MiB, 512KiB or 1048576, not ${JSON.stringify(value)}.`,
      'A batch closes at --batch-size records or at this many bytes, whichever comes first (default 1MiB, or Koan.Backup.DefaultBatchBytes); lower it for very wide rows to use less memory.',
    );
  return bytes;
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** `1048576`, `512KiB`, `10MB` (10^7), `1.5GiB`, `2g` (binary). */
export function sizeOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const factor = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || factor === undefined)
    throw usageError(
      `--${name} must be a size such as 1048576, 512KiB, 10MB or 1.5GiB, not ${JSON.stringify(value)}.`,
      'A number of bytes, optionally with a unit: KB, MB, GB (powers of 1000) or KiB, MiB, GiB, k, m, g (powers of 1024).',
    );
  return Math.round(Number(m[1]) * factor);
}

const AGO: Readonly<Record<string, number>> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/**
 * An ISO-8601 date/time (the library's `parseIsoInstant`: impossible dates refused), or an age such as `30m`, `12h`,
 * `7d`, `2w` (that long ago). With `endOfDay`, a date-only value is the end of that day (an inclusive upper bound).
 */
export function dateOption(
  value: string | undefined,
  name: string,
  options: { now?: number; endOfDay?: boolean } = {},
): string | undefined {
  if (value === undefined || value === '') return undefined;
  const age = /^(\d+)([mhdw])$/.exec(value.trim());
  if (age) return new Date((options.now ?? Date.now()) - Number(age[1]) * AGO[age[2]!]!).toISOString();
  const parsed = parseIsoInstant(value, { endOfDay: options.endOfDay ?? false });
  if ('problem' in parsed)
    throw usageError(
      `--${name} must be an ISO date such as 2024-12-17 or 2024-12-17T08:00:00Z, or an age such as 7d or 12h; got ${JSON.stringify(value)} (${parsed.problem}).`,
      `For example --${name} 2024-12-17, --${name} 2024-12-17T08:00:00Z or --${name} 7d (m minutes, h hours, d days, w weeks ago).`,
    );
  return new Date(parsed.time).toISOString();
}

export function choiceOption<T extends string>(
  value: string | undefined,
  name: string,
  choices: readonly T[],
  hint?: string,
): T | undefined {
  if (value === undefined || value === '') return undefined;
  const found = choices.find((c) => c.toLowerCase() === value.toLowerCase());
  if (!found)
    throw usageError(
      `--${name} must be one of ${choices.join(', ')}; got ${JSON.stringify(value)}.`,
      hint ?? `For example --${name} ${choices[0]}; values are case-insensitive.`,
    );
  return found;
}

/** `{ key: value }`, or `{}` when the value is undefined (for exactOptionalPropertyTypes-style option objects). */
export function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
