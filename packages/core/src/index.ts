/**
 * @koan/core: what every Koan package shares and nothing more: the `KoanError` base with its stable codes,
 * cancellation helpers, and the `koan.config.json` loader with the validation and conversion rules of its sections.
 */
export { abortError, abortedOr, isAbortError, throwIfAborted } from './abort.js';
export {
  type ConfigProblem,
  conformToSchema,
  describeGiven,
  formatProblem,
  KOAN_SECTIONS,
  type LoadConfigOptions,
  type LoadedConfig,
  loadKoanConfig,
  parseConfigSection,
  type SettingKind,
  validateConfig,
  valueAs,
} from './config.js';
export { ConfigError, KoanError } from './errors.js';
