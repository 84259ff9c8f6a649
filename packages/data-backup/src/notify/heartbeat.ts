/**
 * The heartbeat: a URL pinged after each successful scheduled run, healthchecks.io style. It is a dead-man's switch:
 * the monitoring service alerts when the pings stop, which catches what no failure notification can (the scheduler
 * stopped, the host is down, the process hangs). A ping that fails is retried, then reported, and never fails the run.
 */
import { invalidOption } from '../errors.js';
import { type DeliveryResult, Endpoint, type OutgoingRequest, type SenderOptions, settlesWithin } from './delivery.js';

/** Defaults: 3 attempts, at most 30 s between them. */
export interface HeartbeatOptions extends SenderOptions {
  /** The ping URL (https://hc-ping.com/<uuid>, an Uptime Kuma push URL, a Cronitor telemetry URL...). */
  readonly url: string;
  /** `GET` (default), or `POST` with a JSON summary of the run as the body (healthchecks.io shows it). */
  readonly method?: 'GET' | 'POST' | undefined;
}

export class Heartbeat {
  readonly #endpoint: Endpoint;
  readonly #method: 'GET' | 'POST';
  readonly #inFlight = new Set<Promise<DeliveryResult>>();

  constructor(options: HeartbeatOptions) {
    this.#endpoint = new Endpoint(options.url, options, {
      maxAttempts: 3,
      baseDelayMs: 1000,
      maxDelayMs: 30_000,
      timeoutMs: 10_000,
    });
    this.#method = options.method ?? 'GET';
    if (this.#method !== 'GET' && this.#method !== 'POST') throw invalidOption('method', options.method, 'GET or POST');
  }

  /** The receiver as messages show it (scheme, host, port). */
  get target(): string {
    return this.#endpoint.target;
  }

  /**
   * Pings the URL (with `summary` as the JSON body when the method is POST). Resolves with how it went, never
   * rejects; a failure is also handed to `onFailure`. A caller may await it or leave it running.
   */
  ping(summary?: Record<string, unknown>): Promise<DeliveryResult> {
    const request: OutgoingRequest =
      this.#method === 'POST'
        ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(summary ?? {}) }
        : { method: 'GET' };
    const pinging = this.#endpoint
      .send(() => request)
      .then((result) => {
        if (!result.ok && !result.aborted)
          this.#endpoint.report({
            kind: 'heartbeat',
            reason: 'gave-up',
            message: `ping not delivered after ${result.attempts} attempt${result.attempts === 1 ? '' : 's'}: ${result.error}`,
            attempts: result.attempts,
            ...(result.status === undefined ? {} : { status: result.status }),
          });
        return result;
      });
    this.#inFlight.add(pinging);
    void pinging.finally(() => this.#inFlight.delete(pinging));
    return pinging;
  }

  /** Waits up to `timeoutMs` for pings in flight, then aborts what is left. */
  async close(timeoutMs = 5_000): Promise<void> {
    await settlesWithin(Promise.all(this.#inFlight), timeoutMs);
    this.#endpoint.stop();
    await Promise.all(this.#inFlight);
  }
}
