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
   * `instanceof` across copies of `@koan/data`: an error raised by the project's copy (its drivers) is a KoanError for
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

/** Errors raised by entities, adapters and sources. */
export class DataError extends KoanError {}

/** Configuration that cannot be used; the message names the key path and the fix. */
export class ConfigError extends KoanError {}

export function isAbortError(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || (e as { code?: string }).code === 'ABORT_ERR');
}

/** Throws the signal's reason as a KoanError with code `ABORTED`. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** The `ABORTED` error of a cancelled operation; its cause is the signal's reason unless `cause` says otherwise. */
export function abortError(signal: AbortSignal, cause: unknown = signal.reason): KoanError {
  return new KoanError('ABORTED', 'The operation was cancelled', { cause });
}

/**
 * What an operation that failed while `signal` aborted throws: `ABORTED`, with the store's own error (a cancelled
 * statement, say) as the cause; any other failure stays as it is.
 */
export function abortedOr(e: unknown, signal: AbortSignal | undefined): unknown {
  if (!signal?.aborted || (e instanceof KoanError && e.code === 'ABORTED')) return e;
  return abortError(signal, e);
}
