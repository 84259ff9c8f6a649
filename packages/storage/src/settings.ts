import { formatProblem, validateConfig } from '@koan/core';
import { z } from 'zod';
import { StorageError } from './driver.js';

/** Settings shared by the remote providers: retry limits for work their SDK does not retry. */
export const retrySettingsShape = {
  /** Retries after the first attempt. @default 3 */
  maxRetries: intSetting().optional(),
  /** First backoff ceiling in ms, doubled per attempt, with full jitter. @default 100 */
  retryBaseDelayMs: intSetting().optional(),
  /** Largest backoff ceiling in ms. @default 5000 */
  retryMaxDelayMs: intSetting().optional(),
};

/** A non-negative integer setting; accepts digit strings, as environment overrides arrive. */
export function intSetting() {
  return z.union(
    [z.number().int().nonnegative(), z.string().regex(/^\d+$/, 'expected a whole number').transform(Number)],
    { error: 'expected a whole number (0 or more)' },
  );
}

/** A boolean setting; accepts 'true'/'false' strings, as environment overrides arrive. */
export function boolSetting() {
  return z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')], {
    error: 'expected true or false',
  });
}

export const pascal = (s: string) => (s ? s[0]!.toUpperCase() + s.slice(1) : s);

/** `Koan.Storage.Profiles.<profile>.Settings.<Key>`, the path a user edits. */
export function settingPath(profile: string, ...keys: (string | number)[]): string {
  return ['Koan.Storage.Profiles', profile, 'Settings', ...keys.map((k) => pascal(String(k)))].join('.');
}

/**
 * Validates a provider's settings; a failure is a `CONFIG` error naming the profile, the key path,
 * what to put there and what was given. Keys match case-insensitively and text (as environment
 * overrides arrive) is converted where the schema wants a number or boolean (`validateConfig` of
 * @koan/core). Providers call this from `create`; their schemas are strict, so an unknown key
 * fails listing the known ones.
 */
export function parseSettings<S extends z.ZodType>(
  schema: S,
  settings: Record<string, unknown>,
  context: { profile: string; provider: string },
): z.output<S> {
  const result = validateConfig(schema, settings);
  if (result.success) return result.data;
  const problems = result.problems.map((p) => formatProblem(settingPath(context.profile, ...p.path), p.message));
  throw new StorageError(
    'CONFIG',
    `[storage] [${context.provider}] Profile '${context.profile}' has invalid settings: ${problems.join('; ')}. ` +
      `Set them in Koan.Storage.Profiles.${context.profile}.Settings or the matching Koan__Storage__Profiles__${context.profile}__Settings__<Key> environment variable.`,
    { profile: context.profile },
  );
}

const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Replaces `${env:NAME}` references in string settings; a missing variable is a `CONFIG` error. */
export function resolveEnvReferences(
  settings: Record<string, unknown>,
  profile: string,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(settings)) {
    out[key] =
      typeof value === 'string'
        ? value.replace(ENV_REF, (_, name: string) => {
            const v = env[name];
            if (v === undefined)
              throw new StorageError(
                'CONFIG',
                `[storage] ${settingPath(profile, key)} references environment variable ${name}, which is not set. Set ${name} or change the setting.`,
                { profile },
              );
            return v;
          })
        : value;
  }
  return out;
}
