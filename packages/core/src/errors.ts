/**
 * The one error base of every Koan package. `code` is stable and documented, so programs branch on it
 * instead of parsing messages; `cause` keeps the underlying error.
 *
 * @example
 * try { await DataBackup.restoreFrom(User, 'nightly'); }
 * catch (e) { if (e instanceof KoanError && e.code === 'BACKUP_NOT_FOUND') ... }
 */
/** Marks Koan errors, whichever copy of the package made them (see `KoanError[Symbol.hasInstance]`). */
const KOAN_ERROR = Symbol.for('koan.error');

export class KoanError extends Error {
  readonly code: string;
  /** Extra machine-readable facts: entity, key, profile, path... */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
    Object.defineProperty(this, KOAN_ERROR, { value: true });
  }

  /**
   * `instanceof` across copies of `@koan/core`: an error raised by the project's copy (its drivers) is a KoanError for
   * a CLI installed elsewhere too. `KoanError` matches any Koan error; a subclass (`DataError`...) one of that name.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class asked about, KoanError or a subclass
    return isKoanErrorOf(this, value);
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, details: this.details };
  }
}

/** Whether `value` is an instance of `cls` (KoanError or a subclass) made by any copy of this package. */
function isKoanErrorOf(cls: typeof KoanError, value: unknown): boolean {
  if (Function.prototype[Symbol.hasInstance].call(cls, value)) return true;
  if (!(value instanceof Error) || (value as { [KOAN_ERROR]?: boolean })[KOAN_ERROR] !== true) return false;
  if (cls === KoanError) return true;
  for (let proto = Object.getPrototypeOf(value); proto; proto = Object.getPrototypeOf(proto))
    if (proto.constructor?.name === cls.name) return true;
  return false;
}

/** Configuration that cannot be used; the message names the key path and the fix. */
export class ConfigError extends KoanError {}
