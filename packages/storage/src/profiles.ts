import { formatProblem, validateConfig } from '@koan/core';
import { z } from 'zod';
import { type StorageDriver, StorageError, type StorageProvider } from './driver.js';
import { localProvider } from './local.js';
import { memoryProvider } from './memory.js';
import { pascal, resolveEnvReferences } from './settings.js';

/** One profile: which provider, and its settings (keys camelCased by the config loader). */
export const storageProfileSchema = z
  .object({
    provider: z.string().min(1).describe("Storage provider: 'local', 'memory', 's3', 'azure-blob'"),
    settings: z
      .record(z.string(), z.unknown())
      .default({})
      .describe('Provider settings (validated by the provider: an unknown key fails)'),
  })
  .strict();

/**
 * `Koan.Storage` configuration. Any setting can come from the environment as
 * `Koan__Storage__Profiles__<name>__Settings__<Key>`, and a string setting may reference an
 * environment variable as `${env:NAME}` (use this for secrets).
 */
export const storageConfigSchema = z
  .object({
    defaultProfile: z.string().min(1).optional().describe('Profile used when none is named'),
    profiles: z.record(z.string().min(1), storageProfileSchema).default({}),
  })
  .strict();

export type StorageProfileConfig = z.input<typeof storageProfileSchema>;
export type StorageConfig = z.input<typeof storageConfigSchema>;

/** `Koan.Storage.<Key>...` with profile names kept as written. */
function storagePath(path: readonly (string | number)[]): string {
  return [
    'Koan.Storage',
    ...path.map((p, i) => (i === 1 && path[0] === 'profiles' ? String(p) : pascal(String(p)))),
  ].join('.');
}

type ProviderLoader = () => Promise<StorageProvider<never>>;

/** Providers not built in, imported when a profile uses them. */
const OPTIONAL_PROVIDERS: Record<string, { module: string; load: ProviderLoader }> = {
  s3: { module: '@koan/storage-s3', load: async () => (await import('@koan/storage-s3' as string)).provider },
  'azure-blob': {
    module: '@koan/storage-azure',
    load: async () => (await import('@koan/storage-azure' as string)).provider,
  },
};

export interface StorageProfilesOptions {
  /** Base for relative local roots. @default process.cwd() */
  readonly cwd?: string;
  /** Extra or replacement providers by name (tests, third-party backends). */
  readonly providers?: Readonly<Record<string, StorageProvider<never>>>;
  /** Environment for `${env:NAME}` references. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

/** The profile used when nothing is configured: local disk at `./backups`. */
export const EMBEDDED_DEFAULT_PROFILE = 'local';

/**
 * Named storage profiles built from `Koan.Storage`. Drivers are created on first `get` and cached;
 * their clients connect on first use. Providers other than `local` and `memory` live in their own
 * packages: `StorageProfiles.load` imports the ones the configuration uses (or pass them in
 * `providers` and use the constructor).
 *
 * @example
 * const profiles = await StorageProfiles.load(config.koan.storage, { cwd });
 * const storage = profiles.get('primary-backup');
 */
export class StorageProfiles {
  readonly defaultName: string;
  readonly #profiles: Readonly<Record<string, { provider: string; settings: Record<string, unknown> }>>;
  readonly #providers = new Map<string, StorageProvider<never>>([
    [localProvider.name, localProvider as StorageProvider<never>],
    [memoryProvider.name, memoryProvider as StorageProvider<never>],
  ]);
  readonly #drivers = new Map<string, StorageDriver>();
  readonly #cwd: string;
  readonly #env: NodeJS.ProcessEnv;

  /** Validates `config` and imports the providers its profiles use, then checks every profile's settings. */
  static async load(config: unknown, options: StorageProfilesOptions = {}): Promise<StorageProfiles> {
    const profiles = new StorageProfiles(config, options);
    await profiles.loadProviders();
    for (const name of profiles.names()) profiles.get(name);
    return profiles;
  }

  constructor(config: unknown, options: StorageProfilesOptions = {}) {
    const parsed = validateConfig(storageConfigSchema, config ?? {});
    if (!parsed.success) {
      const problems = parsed.problems.map((p) => formatProblem(storagePath(p.path), p.message));
      throw new StorageError('CONFIG', `[storage] Invalid Koan.Storage configuration: ${problems.join('; ')}`);
    }
    const profiles = { ...parsed.data.profiles };
    if (Object.keys(profiles).length === 0)
      profiles[EMBEDDED_DEFAULT_PROFILE] = { provider: 'local', settings: { root: './backups' } };
    this.#profiles = Object.freeze(profiles);
    const names = Object.keys(profiles);
    const defaultName = parsed.data.defaultProfile ?? (names.length === 1 ? names[0]! : undefined);
    if (defaultName === undefined || !(defaultName in profiles))
      throw new StorageError(
        'CONFIG',
        defaultName === undefined
          ? `[storage] Koan.Storage.DefaultProfile is not set and there are ${names.length} profiles (${names.join(', ')}). Set it to one of them.`
          : `[storage] Koan.Storage.DefaultProfile is '${defaultName}', which is not a profile. Use one of: ${names.join(', ')}.`,
        { profile: defaultName },
      );
    this.defaultName = defaultName;
    this.#cwd = options.cwd ?? process.cwd();
    this.#env = options.env ?? process.env;
    for (const [name, provider] of Object.entries(options.providers ?? {})) this.#providers.set(name, provider);
  }

  names(): string[] {
    return Object.keys(this.#profiles);
  }

  /** The provider name a profile uses. */
  providerOf(name: string = this.defaultName): string {
    return this.#config(name).provider;
  }

  /** Imports the provider packages the configured profiles need (idempotent). */
  async loadProviders(): Promise<void> {
    for (const name of this.names()) {
      const { provider } = this.#config(name);
      if (this.#providers.has(provider)) continue;
      const optional = OPTIONAL_PROVIDERS[provider];
      if (!optional) throw this.#unknownProvider(name, provider);
      try {
        const loaded = await optional.load();
        if (!loaded || typeof loaded.create !== 'function') throw new Error('it exports no `provider`');
        this.#providers.set(provider, loaded);
      } catch (e) {
        throw new StorageError(
          'CONFIG',
          `[storage] Profile '${name}' uses provider '${provider}', but ${optional.module} could not be loaded (${(e as Error).message}). Install it: npm install ${optional.module}`,
          { profile: name, cause: e },
        );
      }
    }
  }

  /** The driver for a profile (the default one when `name` is undefined), created once. */
  get(name: string = this.defaultName): StorageDriver {
    const cached = this.#drivers.get(name);
    if (cached) return cached;
    const { provider: providerName, settings } = this.#config(name);
    const provider = this.#providers.get(providerName);
    if (!provider) {
      const optional = OPTIONAL_PROVIDERS[providerName];
      if (!optional) throw this.#unknownProvider(name, providerName);
      throw new StorageError(
        'CONFIG',
        `[storage] Profile '${name}' uses provider '${providerName}' from ${optional.module}, which is not loaded yet. Create the profiles with \`await StorageProfiles.load(config)\` or call \`await profiles.loadProviders()\` first.`,
        { profile: name },
      );
    }
    const driver = provider.create(resolveEnvReferences(settings, name, this.#env) as never, {
      profile: name,
      cwd: this.#cwd,
    });
    this.#drivers.set(name, driver);
    return driver;
  }

  /** Closes every driver created so far. */
  async close(): Promise<void> {
    const drivers = [...this.#drivers.values()];
    this.#drivers.clear();
    await Promise.allSettled(drivers.map((d) => d.close?.()));
  }

  #config(name: string) {
    const config = this.#profiles[name];
    if (!config)
      throw new StorageError(
        'CONFIG',
        `[storage] Storage profile '${name}' is not configured. Add Koan.Storage.Profiles.${name} or use one of: ${this.names().join(', ')}.`,
        { profile: name },
      );
    return config;
  }

  #unknownProvider(profile: string, provider: string): StorageError {
    const known = [...new Set([...this.#providers.keys(), ...Object.keys(OPTIONAL_PROVIDERS)])];
    return new StorageError(
      'CONFIG',
      `[storage] Koan.Storage.Profiles.${profile}.Provider is '${provider}', which is not a storage provider. Use one of: ${known.join(', ')}.`,
      { profile },
    );
  }
}
