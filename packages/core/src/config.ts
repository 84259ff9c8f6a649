/**
 * `koan.config.json` loading. The file mirrors the .NET shape (`Koan.Storage.Profiles.<name>.Provider`),
 * keys are case-insensitive (PascalCase as in .NET, or camelCase), and any value can be overridden from the
 * environment with `Koan__Section__Key=value` (double underscore between levels, as in .NET; names are
 * case-insensitive too), which is how secrets get in without being committed.
 *
 * Environment values stay the exact text they were given: `validateConfig` turns text into a number or a boolean
 * only where the schema wants one, so a password `0123` or a bucket `2024` arrives as written.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from './errors.js';

/** Objects whose keys are user-chosen names: their keys are kept as written. */
const NAME_MAPS = new Set(['sources', 'profiles', 'entities', 'schedules']);

/** The sections of `Koan` this library reads; an env var naming another one is an error. */
export const KOAN_SECTIONS: readonly string[] = Object.freeze(['data', 'storage', 'backup']);

/**
 * Marks an object or array parsed from a JSON-looking environment value with the exact text it came from, so that
 * a setting that wants text (a password `[1,2]`) gets that text back instead of the parsed value.
 */
export const ENV_TEXT: unique symbol = Symbol('koan.envText');

export interface LoadedConfig {
  /**
   * The `Koan` section, keys camelCased (names of sources/profiles kept). Values from the environment are the text
   * given (JSON objects and arrays parsed); `parseConfigSection` converts them where a schema wants numbers or booleans.
   */
  readonly koan: Record<string, unknown>;
  /** The file read, if any. */
  readonly file: string | undefined;
  /** Env vars that were applied. */
  readonly envOverrides: readonly string[];
}

export interface LoadConfigOptions {
  readonly cwd?: string;
  /** Path of the config file. Default: `$KOAN_CONFIG`, else `koan.config.json` in cwd (optional). */
  readonly file?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

const camel = (k: string) => (k.length ? k[0]!.toLowerCase() + k.slice(1) : k);
const pascal = (k: string) => (k.length ? k[0]!.toUpperCase() + k.slice(1) : k);
/** The key an env segment makes when nothing matches it yet: `DEFAULTBATCHSIZE` → `defaultbatchsize`. */
const envKey = (seg: string) => (/[a-z]/.test(seg) ? camel(seg) : seg.toLowerCase());

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Names no configuration key or source/profile name may have: assigning them would change an object's prototype (or
 * shadow what every object has) instead of setting a value, so a setting would vanish without a word.
 */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function refuseForbiddenKey(key: string, where: string): void {
  if (FORBIDDEN_KEYS.has(key.toLowerCase()))
    throw new ConfigError(
      'CONFIG_INVALID',
      `${where} uses the key '${key}', which no Koan setting or name may be (it would change how objects behave instead of holding a value). Rename or remove it.`,
      { details: { key, where } },
    );
}

function normalizeKeys(value: unknown, parentKey?: string, path = 'Koan'): unknown {
  if (Array.isArray(value)) return value.map((v, i) => normalizeKeys(v, undefined, `${path}[${i}]`));
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  const keepNames = parentKey !== undefined && NAME_MAPS.has(parentKey);
  for (const [k, v] of Object.entries(value)) {
    if (k === '$schema' || k === '$comment') continue;
    refuseForbiddenKey(k, path);
    const key = keepNames ? k : camel(k);
    out[key] = normalizeKeys(v, key, `${path}.${k}`);
  }
  return out;
}

/** The `Koan` section of a file, its section names matched case-insensitively to the known ones. */
function normalizeSections(koanRaw: unknown): Record<string, unknown> {
  const koan = normalizeKeys(koanRaw);
  if (!isPlainObject(koan)) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(koan)) out[KOAN_SECTIONS.find((s) => s === k.toLowerCase()) ?? k] = v;
  return out;
}

/**
 * An environment value: the text as given, except that a JSON object or array (`{"KeepDaily":3}`) is parsed, its
 * keys normalised like the file's, and marked with its text (`ENV_TEXT`).
 */
function parseEnvValue(raw: string, key: string): unknown {
  if (/^\s*[[{]/.test(raw)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      return raw;
    }
    const normalized = normalizeKeys(parsed, key) as object;
    Object.defineProperty(normalized, ENV_TEXT, { value: raw, enumerable: false, configurable: true });
    return normalized;
  }
  return raw;
}

/** Reads the config file (if present) and applies `Koan__...` environment overrides. */
export function loadKoanConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const explicit = options.file ?? env.KOAN_CONFIG;
  const file = explicit ? resolve(cwd, explicit) : resolve(cwd, 'koan.config.json');
  let root: Record<string, unknown> = {};
  let used: string | undefined;
  if (existsSync(file)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError('CONFIG_INVALID_JSON', `${file} is not valid JSON: ${(e as Error).message}`, {
        cause: e,
        details: { file },
      });
    }
    if (!isPlainObject(parsed))
      throw new ConfigError('CONFIG_INVALID', `${file} must contain a JSON object with a "Koan" section`, {
        details: { file },
      });
    root = parsed;
    used = file;
  } else if (explicit) {
    throw new ConfigError(
      'CONFIG_NOT_FOUND',
      `Config file ${file} does not exist (from ${options.file ? 'options.file' : 'KOAN_CONFIG'}).`,
      { details: { file } },
    );
  }
  const rootKey = root.Koan !== undefined ? 'Koan' : Object.keys(root).find((k) => k.toLowerCase() === 'koan');
  const koan = normalizeSections(rootKey === undefined ? {} : root[rootKey]);
  const applied: string[] = [];
  for (const [name, raw] of Object.entries(env)) {
    if (raw === undefined || !/^koan__/i.test(name)) continue;
    const segments = name.split('__').slice(1).filter(Boolean);
    if (!segments.length) continue;
    const section = KOAN_SECTIONS.find((s) => s === segments[0]!.toLowerCase());
    if (section === undefined)
      throw new ConfigError(
        'CONFIG_INVALID',
        `Environment variable ${name} names the section '${segments[0]}', which is not a Koan configuration section. ` +
          `Use one of: ${KOAN_SECTIONS.map((s) => `Koan__${pascal(s)}__...`).join(', ')} (names are case-insensitive), or remove the variable.`,
        { details: { variable: name, section: segments[0] } },
      );
    for (const seg of segments) refuseForbiddenKey(seg, `Environment variable ${name}`);
    segments[0] = section;
    let node: Record<string, unknown> = koan;
    let parent: string | undefined;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      const keepName = parent !== undefined && NAME_MAPS.has(parent);
      const wanted = keepName ? seg : envKey(seg);
      const existing = Object.hasOwn(node, wanted)
        ? wanted
        : Object.keys(node).find((k) => k.toLowerCase() === wanted.toLowerCase());
      const key = existing ?? wanted;
      // The object no longer is the JSON text it was parsed from.
      delete (node as { [ENV_TEXT]?: string })[ENV_TEXT];
      if (i === segments.length - 1) node[key] = parseEnvValue(raw, key);
      else {
        const next = node[key];
        // A list is indexed as in .NET configuration (Koan__Backup__Monitor__Targets__0__MaxAgeHours): the item is set
        // and the list kept. Where nothing is yet, an index starts a list (not in a map of names: there "0" is a name).
        const index = /^\d+$/.test(segments[i + 1]!);
        if (!isPlainObject(next) && !(Array.isArray(next) && index))
          node[key] = index && !NAME_MAPS.has(key.toLowerCase()) ? [] : {};
        node = node[key] as Record<string, unknown>;
      }
      parent = key;
    }
    applied.push(name);
  }
  return { koan, file: used, envOverrides: applied };
}

// ---------------------------------------------------------------------------------------------------------------
// Validation: case-insensitive keys, env text converted where the schema wants numbers/booleans, clear messages.

interface Def {
  readonly type: string;
  readonly [key: string]: unknown;
}
const defOf = (schema: unknown): Def => (schema as { _zod: { def: Def } })._zod.def;

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional']);
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** The schema that reads a value: wrappers, lazies and pipes looked through. */
function reader(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let i = 0; i < 64; i++) {
    const def = defOf(s);
    if (WRAPPERS.has(def.type)) s = def.innerType as z.ZodType;
    else if (def.type === 'lazy') s = (def.getter as () => z.ZodType)();
    // A preprocess pipe reads with its output schema; a transform pipe with its input schema.
    else if (def.type === 'pipe') s = (defOf(def.in).type === 'transform' ? def.out : def.in) as z.ZodType;
    else return s;
  }
  return s;
}

/** What a setting holds, so text from the environment (`Koan__...` variables) is converted to it. */
export type SettingKind = 'text' | 'number' | 'boolean';

const envText = (value: unknown): string | undefined =>
  value !== null && typeof value === 'object' ? (value as { [ENV_TEXT]?: string })[ENV_TEXT] : undefined;

/** The schema key `key` stands for: itself, else the one key equal to it ignoring case (and not also given as is). */
function matchKey(key: string, shapeKeys: readonly string[], given: Record<string, unknown>): string {
  if (shapeKeys.includes(key)) return key;
  const lower = key.toLowerCase();
  const matches = shapeKeys.filter((k) => k.toLowerCase() === lower && !(k in given));
  return matches.length === 1 ? matches[0]! : key;
}

/**
 * Prepares a config value for `schema`: object keys matched case-insensitively to the schema's, text converted to a
 * number where a number is wanted (`"250"` → 250) and to a boolean where one is wanted (`"true"`/`"false"`, any
 * case), and a JSON environment value given where text is wanted turned back into its text. Nothing else changes:
 * text where text is wanted is kept exactly as written.
 */
export function conformToSchema(schema: z.ZodType, value: unknown): unknown {
  const s = reader(schema);
  const def = defOf(s);
  switch (def.type) {
    case 'object': {
      if (!isPlainObject(value)) return value;
      const shape = def.shape as Record<string, z.ZodType>;
      const keys = Object.keys(shape);
      const catchall = def.catchall as z.ZodType | undefined;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const key = matchKey(k, keys, value);
        const field = shape[key] ?? (catchall && defOf(catchall).type !== 'never' ? catchall : undefined);
        out[key] = field ? conformToSchema(field, v) : v;
      }
      return out;
    }
    case 'record': {
      if (!isPlainObject(value)) return value;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = conformToSchema(def.valueType as z.ZodType, v);
      return out;
    }
    case 'array':
      return Array.isArray(value) && !envText(value)
        ? value.map((v) => conformToSchema(def.element as z.ZodType, v))
        : value;
    case 'union': {
      for (const option of def.options as z.ZodType[]) {
        const candidate = conformToSchema(option, value);
        if (option.safeParse(candidate).success) return candidate;
      }
      return value;
    }
    case 'number':
      return valueAs('number', value);
    case 'boolean':
      return valueAs('boolean', value);
    case 'string':
    case 'enum':
    case 'literal':
    case 'template_literal':
      return valueAs('text', value);
    default:
      return value;
  }
}

/**
 * `value` as a setting of `kind` wants it, when it is configuration text: `"250"` → 250, `"True"` → true, a JSON
 * environment value back to its exact text. Anything else is returned unchanged (for the caller to refuse). The one
 * conversion rule of config sections (`conformToSchema`) and provider settings (`DataProvider.settings`).
 */
export function valueAs(kind: SettingKind, value: unknown): unknown {
  if (kind === 'text') return envText(value) ?? value;
  if (typeof value !== 'string') return value;
  if (kind === 'number') return DECIMAL.test(value) ? Number(value) : value;
  return /^(true|false)$/i.test(value) ? value.toLowerCase() === 'true' : value;
}

/** The schema of the value at `path` inside `schema`, if it can be told. */
function schemaAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = schema;
  for (const seg of path) {
    if (!s) return undefined;
    const def = defOf(reader(s));
    if (def.type === 'object') s = (def.shape as Record<string, z.ZodType>)[String(seg)];
    else if (def.type === 'record') s = def.valueType as z.ZodType;
    else if (def.type === 'array') s = def.element as z.ZodType;
    else if (def.type === 'union')
      s = (def.options as z.ZodType[]).map((o) => schemaAt(o, [seg])).find((x) => x !== undefined);
    else return undefined;
  }
  return s;
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let v = value;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

/** Keys whose values are never repeated in an error message. */
const SECRET_KEY = /password|secret|token|credential|connectionstring|accountkey|accesskey|sas|^ur[il]$|^key$/i;

/** How an error message shows a value that was given: `the number 2024`, `the text "abc"`, `true`. */
export function describeGiven(value: unknown, key?: string): string {
  const hidden = key !== undefined && SECRET_KEY.test(key);
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    if (value === '') return 'empty text';
    if (hidden) return `text of ${value.length} characters (not shown)`;
    return `the text ${JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value)}`;
  }
  if (typeof value === 'number' || typeof value === 'bigint')
    return hidden ? 'a number (not shown)' : `the number ${String(value)}`;
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `a list of ${value.length} items`;
  return 'an object';
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  record: 'an object',
  array: 'a list',
  bigint: 'a whole number',
  date: 'a date',
  null: 'null',
};

function expectedOf(issue: z.core.$ZodIssue, schema: z.ZodType | undefined): string {
  if (issue.code === 'invalid_type') return EXPECTED[issue.expected] ?? issue.expected;
  if (issue.code === 'invalid_value')
    return issue.values.length === 1
      ? JSON.stringify(issue.values[0])
      : `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  if (issue.code === 'too_small' || issue.code === 'too_big') {
    const small = issue.code === 'too_small';
    const bound = Number(small ? issue.minimum : issue.maximum);
    const inclusive = issue.inclusive !== false;
    const op = small ? (inclusive ? '>=' : '>') : inclusive ? '<=' : '<';
    if (issue.origin === 'string')
      return small && bound === 1 ? 'non-empty text' : `text of ${small ? 'at least' : 'at most'} ${bound} characters`;
    if (issue.origin === 'array' || issue.origin === 'set') return `${small ? 'at least' : 'at most'} ${bound} items`;
    const kind = schema && defOf(reader(schema)).type === 'number' && isInt(schema) ? 'a whole number' : 'a number';
    return `${kind} ${op} ${bound}`;
  }
  if (issue.code === 'invalid_format') {
    if (issue.format === 'regex') return `text matching ${(issue as { pattern?: string }).pattern ?? 'the pattern'}`;
    if (issue.format === 'url') return 'a URL (such as https://host/path)';
    return `text in ${issue.format} format`;
  }
  return 'a valid value';
}

function isInt(schema: z.ZodType): boolean {
  const def = defOf(reader(schema));
  const formats = [
    def.format,
    ...((def.checks as { _zod: { def: { format?: unknown } } }[] | undefined) ?? []).map((c) => c._zod.def.format),
  ];
  return formats.some((f) => typeof f === 'string' && /int/.test(f));
}

/** Zod's own wording (not a message the schema chose). */
const DEFAULT_MESSAGE = /^(Invalid input|Invalid string|Invalid URL|Invalid option|Too small|Too big|Invalid )/;

/** One problem of a config value: where (schema keys), and what was expected and given. */
export interface ConfigProblem {
  readonly path: readonly (string | number)[];
  /** `is required (...)`, or what was expected and what was given. */
  readonly message: string;
}

function explain(
  issue: z.core.$ZodIssue,
  root: z.ZodType,
  input: unknown,
  basePath: readonly PropertyKey[] = [],
): ConfigProblem[] {
  const path = [...basePath, ...issue.path].map((p) => (typeof p === 'number' ? p : String(p)));
  const key = [...path].reverse().find((p): p is string => typeof p === 'string');
  const schema = schemaAt(root, path);
  const given = 'input' in issue ? issue.input : valueAt(input, path);
  const got = describeGiven(given, key);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = schemaAt(root, path);
      const def = known ? defOf(reader(known)) : undefined;
      const names = def?.type === 'object' ? Object.keys(def.shape as object).map(pascal) : [];
      return issue.keys.map((k) => ({
        path: [...path, k],
        message: `unknown key${names.length ? `; known keys: ${names.join(', ')}` : ''}`,
      }));
    }
    case 'invalid_type':
      if (given === undefined) return [{ path, message: `is required (${expectedOf(issue, schema)})` }];
      return [{ path, message: `expected ${expectedOf(issue, schema)}, got ${got}` }];
    case 'invalid_union': {
      if (!DEFAULT_MESSAGE.test(issue.message)) return [{ path, message: `${issue.message}, got ${got}` }];
      // A branch that accepted the type but not the value explains best; else list what each branch wants.
      const near = issue.errors.find((branch) => branch.length && !branch.every((i) => i.code === 'invalid_type'));
      if (near) return near.flatMap((i) => explain(i, root, input, path));
      if (given === undefined) return [{ path, message: 'is required' }];
      const wanted = [
        ...new Set(issue.errors.flatMap((b) => b.filter((i) => i.path.length === 0).map((i) => expectedOf(i, schema)))),
      ];
      return [{ path, message: `expected ${wanted.join(' or ') || 'a valid value'}, got ${got}` }];
    }
    case 'invalid_value':
    case 'too_small':
    case 'too_big':
    case 'invalid_format':
      if (!DEFAULT_MESSAGE.test(issue.message)) return [{ path, message: `${issue.message}, got ${got}` }];
      return [{ path, message: `expected ${expectedOf(issue, schema)}, got ${got}` }];
    default:
      return [{ path, message: issue.message }];
  }
}

/**
 * Validates a config value with `schema` after `conformToSchema`. Problems name the path (schema keys, as in
 * `issue.path`), what was expected and what was given (secrets not shown); unknown keys list the known ones.
 */
export function validateConfig<T extends z.ZodType>(
  schema: T,
  value: unknown,
): { success: true; data: z.output<T> } | { success: false; problems: ConfigProblem[] } {
  const input = conformToSchema(schema, value);
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return { success: true, data: result.data };
  return { success: false, problems: result.error.issues.flatMap((issue) => explain(issue, schema, input)) };
}

/** `<path> is required...` or `<path>: <what was expected and given>`. */
export function formatProblem(path: string, message: string): string {
  return message.startsWith('is required') ? `${path} ${message}` : `${path}: ${message}`;
}

function pascalPath(path: readonly PropertyKey[], parents: readonly string[]): string {
  const all = [...parents, ...path.map(String)];
  let prev = '';
  return all
    .map((seg) => {
      const out = NAME_MAPS.has(prev.toLowerCase()) || /^\d+$/.test(seg) ? seg : pascal(seg);
      prev = seg;
      return out;
    })
    .join('.');
}

/**
 * Validates one config section with its zod schema. Keys are matched case-insensitively and environment text is
 * converted where the schema wants numbers or booleans (see `conformToSchema`). The error names every bad key path
 * as it is written in koan.config.json, the expected value and what was given, and the env var that would set it.
 */
export function parseConfigSection<T extends z.ZodType>(
  schema: T,
  value: unknown,
  sectionPath: readonly string[],
  file?: string,
): z.infer<T> {
  const result = validateConfig(schema, value ?? {});
  if (result.success) return result.data;
  const lines = result.problems.map((problem) => {
    const path = pascalPath(problem.path, sectionPath);
    return `- ${formatProblem(path, problem.message)} (set it in ${file ?? 'koan.config.json'} or with env ${path.replace(/\./g, '__')})`;
  });
  throw new ConfigError('CONFIG_INVALID', `Invalid configuration:\n${lines.join('\n')}`, {
    details: {
      issues: result.problems.map((p) => ({ path: pascalPath(p.path, sectionPath), message: p.message })),
    },
  });
}
