import type { DataAdapter, DataProvider, SettingKind } from './adapter.js';
import { dataConfigSchema, describeGiven, loadKoanConfig, parseConfigSection, valueAs } from './config.js';
import { ConfigError, DataError } from './errors.js';
import { importFromProject } from './resolve.js';

/** One configured source: a provider name and its settings. */
export interface SourceConfig {
  readonly provider: string;
  readonly settings?: Readonly<Record<string, unknown>>;
}

export interface DataRuntimeOptions {
  /** Sources by name. `default` is used by entities that name no source. */
  readonly sources?: Readonly<Record<string, SourceConfig>>;
  /** Extra providers, by name, in addition to the built-in ones and `@koan/data-<name>` packages. */
  readonly providers?: readonly DataProvider[];
  /** Directory relative paths in settings resolve against. Default `process.cwd()`. */
  readonly cwd?: string;
}

/** The embedded default: one SQLite file in `.koan/`. */
export const DEFAULT_SOURCES: Readonly<Record<string, SourceConfig>> = Object.freeze({
  default: { provider: 'sqlite', settings: { path: '.koan/data.sqlite' } },
});

const PACKAGE_OF: Readonly<Record<string, string>> = {
  memory: './adapters/memory.js',
  json: './adapters/json-file.js',
  sqlite: '@koan/data-sqlite',
  postgres: '@koan/data-postgres',
  postgresql: '@koan/data-postgres',
  mysql: '@koan/data-mysql',
  mariadb: '@koan/data-mysql',
  redis: '@koan/data-redis',
  lancedb: '@koan/data-lancedb',
};

/**
 * The settings a provider that declares them (`DataProvider.settings`) gets: keys matched case-insensitively to the ones
 * it reads (an unknown key fails, naming the known ones), and text (as env vars give it) turned into a number or
 * boolean where the setting is one. Text settings are passed exactly as given.
 */
export function providerSettings(
  provider: Pick<DataProvider, 'name' | 'settings'>,
  source: string,
  settings: Readonly<Record<string, unknown>> = {},
): Record<string, unknown> {
  const kinds = provider.settings;
  if (!kinds) return { ...settings };
  const names = Object.keys(kinds);
  const out: Record<string, unknown> = {};
  for (const [given, value] of Object.entries(settings)) {
    const key =
      given in kinds
        ? given
        : (names.find((k) => k.toLowerCase() === given.toLowerCase() && !(k in settings)) ?? given);
    const kind = kinds[key];
    if (kind === undefined) {
      // A setting the provider does not read is a typo (`Pasword`) that would otherwise fail later, or never.
      const path = `Koan.Data.Sources.${source}.Settings.${given[0]!.toUpperCase()}${given.slice(1)}`;
      throw new ConfigError(
        'CONFIG_INVALID',
        `Invalid configuration:\n- ${path}: not a setting of the ${provider.name} provider (its settings: ${names.join(', ') || 'none'})`,
        { details: { source, provider: provider.name, issues: [{ path, message: 'unknown setting' }] } },
      );
    }
    const converted = value === undefined || value === null ? value : convert(kind, value);
    if (converted === INVALID) {
      const path = `Koan.Data.Sources.${source}.Settings.${key[0]!.toUpperCase()}${key.slice(1)}`;
      const expected = kind === 'text' ? 'text' : kind === 'number' ? 'a number' : 'true or false';
      throw new ConfigError(
        'CONFIG_INVALID',
        `Invalid configuration:\n- ${path}: expected ${expected}, got ${describeGiven(value, key)} (set it in koan.config.json or with env ${path.replace(/\./g, '__')})`,
        { details: { source, provider: provider.name, issues: [{ path, message: `expected ${expected}` }] } },
      );
    }
    out[key] = converted;
  }
  return out;
}

const INVALID = Symbol('invalid');

/** `value` converted to `kind` (see `valueAs`), or INVALID when it is not one. */
function convert(kind: SettingKind, value: unknown): unknown {
  const v = valueAs(kind, value);
  return typeof v === (kind === 'text' ? 'string' : kind) ? v : INVALID;
}

/**
 * Owns the adapters of every source: creates each on first use, initialises it exactly once
 * and closes it exactly once.
 */
export class DataRuntime {
  readonly sources: Readonly<Record<string, SourceConfig>>;
  readonly cwd: string;
  #providers = new Map<string, DataProvider>();
  #adapters = new Map<string, Promise<DataAdapter>>();
  #closed = false;

  constructor(options: DataRuntimeOptions = {}) {
    this.sources = Object.freeze({ ...(options.sources ?? DEFAULT_SOURCES) });
    this.cwd = options.cwd ?? process.cwd();
    for (const p of options.providers ?? []) this.#providers.set(p.name, p);
  }

  sourceNames(): string[] {
    return Object.keys(this.sources);
  }

  /** The provider kind of a source (without connecting). */
  providerOf(source: string): string {
    return this.#config(source).provider;
  }

  #config(source: string): SourceConfig {
    const config = this.sources[source];
    if (!config)
      throw new ConfigError(
        'UNKNOWN_SOURCE',
        `Unknown data source "${source}". Configured sources: ${Object.keys(this.sources).join(', ') || '(none)'}. Add it under Koan.Data.Sources in koan.config.json or pass it to configureData().`,
        { details: { source } },
      );
    return config;
  }

  /**
   * Loads the provider package of a source without connecting or creating anything, so that a later `adapter()`
   * does not wait for it (a restore loads providers while it checks the archive).
   */
  async preload(source: string): Promise<void> {
    const config = this.#config(source);
    await this.#provider(config.provider, source);
  }

  /** The initialised adapter of a source. */
  adapter(source: string): Promise<DataAdapter> {
    if (this.#closed)
      return Promise.reject(new DataError('RUNTIME_CLOSED', 'This data runtime has been closed; create a new one.'));
    let pending = this.#adapters.get(source);
    if (!pending) {
      pending = this.#create(source);
      this.#adapters.set(source, pending);
      pending.catch(() => this.#adapters.delete(source));
    }
    return pending;
  }

  async #create(source: string): Promise<DataAdapter> {
    const config = this.#config(source);
    const provider = await this.#provider(config.provider, source);
    const adapter = provider.create(providerSettings(provider, source, config.settings), {
      source,
      cwd: this.cwd,
    });
    try {
      await adapter.init();
    } catch (e) {
      throw new DataError(
        'SOURCE_UNAVAILABLE',
        `Cannot open data source "${source}" (${config.provider}): ${(e as Error).message}`,
        {
          cause: e,
          details: { source, provider: config.provider },
        },
      );
    }
    return adapter;
  }

  async #provider(name: string, source: string): Promise<DataProvider> {
    const known = this.#providers.get(name);
    if (known) return known;
    const specifier = PACKAGE_OF[name] ?? `@koan/data-${name}`;
    let mod: { provider?: DataProvider };
    try {
      // The user's project first (a CLI run through npx cannot see its drivers otherwise), then this installation.
      mod = await importFromProject<{ provider?: DataProvider }>(specifier, this.cwd);
    } catch (e) {
      throw new ConfigError(
        'PROVIDER_NOT_INSTALLED',
        `Data source "${source}" uses provider "${name}", but ${specifier} could not be loaded from the project in ${this.cwd} nor from this installation. Install it in the project (npm install ${specifier}) or fix Koan.Data.Sources.${source}.Provider.`,
        { cause: e, details: { source, provider: name } },
      );
    }
    if (!mod.provider) throw new ConfigError('PROVIDER_INVALID', `${specifier} does not export "provider"`);
    this.#providers.set(name, mod.provider);
    return mod.provider;
  }

  /** Adapters that have been opened so far. */
  async openAdapters(): Promise<Map<string, DataAdapter>> {
    const out = new Map<string, DataAdapter>();
    for (const [name, p] of this.#adapters) {
      try {
        out.set(name, await p);
      } catch {
        /* failed sources are not open */
      }
    }
    return out;
  }

  /** Closes every opened adapter once. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const errors: unknown[] = [];
    for (const p of this.#adapters.values()) {
      try {
        await (await p).close();
      } catch (e) {
        errors.push(e);
      }
    }
    this.#adapters.clear();
    if (errors.length)
      throw new DataError('CLOSE_FAILED', `Closing ${errors.length} data source(s) failed`, { cause: errors[0] });
  }
}

let current: DataRuntime | undefined;

/**
 * The process-wide runtime entities use. Unless `configureData` was called, it is created on first use
 * from `Koan.Data.Sources` in koan.config.json (and `Koan__Data__...` env vars), or the embedded default.
 */
export function getDataRuntime(): DataRuntime {
  current ??= new DataRuntime(runtimeOptionsFromConfig());
  return current;
}

/** Runtime options from koan.config.json + env in `cwd`. */
export function runtimeOptionsFromConfig(cwd = process.cwd()): DataRuntimeOptions {
  const loaded = loadKoanConfig({ cwd });
  const data = parseConfigSection(dataConfigSchema, loaded.koan.data, ['Koan', 'Data'], loaded.file);
  return { cwd, ...(data.sources ? { sources: data.sources } : {}) };
}

/**
 * Sets the process-wide data runtime. Closes the previous one.
 *
 * @example
 * await configureData({ sources: { default: { provider: 'sqlite', settings: { path: 'app.db' } } } });
 */
export async function configureData(options: DataRuntimeOptions | DataRuntime): Promise<DataRuntime> {
  const previous = current;
  current = options instanceof DataRuntime ? options : new DataRuntime(options);
  if (previous && previous !== current) await previous.close();
  return current;
}
