/**
 * `koan.config.json` loading. The file mirrors the .NET shape (`Koan.Storage.Profiles.<name>.Provider`),
 * keys may be PascalCase or camelCase, and any value can be overridden from the environment with
 * `Koan__Section__Key=value` (double underscore between levels, as in .NET), which is how secrets
 * get in without being committed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.js';

/** Objects whose keys are user-chosen names: their keys are kept as written. */
const NAME_MAPS = new Set(['sources', 'profiles', 'entities', 'schedules']);

export interface LoadedConfig {
  /** The `Koan` section, keys camelCased (names of sources/profiles kept). */
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

function normalizeKeys(value: unknown, parentKey?: string): unknown {
  if (Array.isArray(value)) return value.map((v) => normalizeKeys(v));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  const keepNames = parentKey !== undefined && NAME_MAPS.has(parentKey);
  for (const [k, v] of Object.entries(value)) {
    if (k === '$schema') continue;
    const key = keepNames ? k : camel(k);
    out[key] = normalizeKeys(v, key);
  }
  return out;
}

function parseEnvValue(raw: string): unknown {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  if (/^-?\d+(\.\d+)?$/.test(raw) && raw.length < 16) return Number(raw);
  if (/^[[{]/.test(raw)) {
    try {
      return JSON.parse(raw);
    } catch {
      /* plain string */
    }
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
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new ConfigError('CONFIG_INVALID', `${file} must contain a JSON object with a "Koan" section`, {
        details: { file },
      });
    root = parsed as Record<string, unknown>;
    used = file;
  } else if (explicit) {
    throw new ConfigError(
      'CONFIG_NOT_FOUND',
      `Config file ${file} does not exist (from ${options.file ? 'options.file' : 'KOAN_CONFIG'}).`,
      { details: { file } },
    );
  }
  const koanRaw = root.Koan ?? root.koan ?? {};
  const koan = normalizeKeys(koanRaw) as Record<string, unknown>;
  const applied: string[] = [];
  for (const [name, raw] of Object.entries(env)) {
    if (raw === undefined || !/^koan__/i.test(name)) continue;
    const segments = name.split('__').slice(1).filter(Boolean);
    if (!segments.length) continue;
    let node: Record<string, unknown> = koan;
    let parent: string | undefined;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      const keepName = parent !== undefined && NAME_MAPS.has(parent);
      const wanted = keepName ? seg : camel(seg);
      const existing = Object.keys(node).find((k) => k.toLowerCase() === wanted.toLowerCase());
      const key = existing ?? wanted;
      if (i === segments.length - 1) node[key] = parseEnvValue(raw);
      else {
        const next = node[key];
        if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
        node = node[key] as Record<string, unknown>;
      }
      parent = key;
    }
    applied.push(name);
  }
  return { koan, file: used, envOverrides: applied };
}

function pascalPath(path: readonly PropertyKey[], parents: readonly string[]): string {
  const all = [...parents, ...path.map(String)];
  let prev = '';
  return all
    .map((seg) => {
      const out = NAME_MAPS.has(prev.toLowerCase()) || /^\d+$/.test(seg) ? seg : seg[0]!.toUpperCase() + seg.slice(1);
      prev = seg;
      return out;
    })
    .join('.');
}

/**
 * Validates one config section with its zod schema. The error names every bad key path as it is
 * written in koan.config.json, the expected value, and the env var that would override it.
 */
export function parseConfigSection<T extends z.ZodType>(
  schema: T,
  value: unknown,
  sectionPath: readonly string[],
  file?: string,
): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const path = pascalPath(issue.path, sectionPath);
    return `- ${path}: ${issue.message} (set it in ${file ?? 'koan.config.json'} or with env ${path.replace(/\./g, '__')})`;
  });
  throw new ConfigError('CONFIG_INVALID', `Invalid configuration:\n${lines.join('\n')}`, {
    details: {
      issues: result.error.issues.map((i) => ({ path: pascalPath(i.path, sectionPath), message: i.message })),
    },
  });
}

/** `Koan.Data`: the data sources. */
export const dataConfigSchema = z
  .object({
    sources: z
      .record(
        z.string(),
        z
          .object({
            provider: z
              .string()
              .min(1)
              .describe('Provider kind: sqlite, postgres, mysql, mariadb, redis, lancedb, json, memory'),
            settings: z
              .record(z.string(), z.unknown())
              .optional()
              .describe('Provider settings (see the provider package README)'),
          })
          .strict(),
      )
      .optional()
      .describe('Data sources by name; entities without a source use "default"'),
  })
  .strict();

export type DataConfig = z.infer<typeof dataConfigSchema>;
