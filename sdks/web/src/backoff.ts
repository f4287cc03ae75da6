/**
 * The reconnect policy of SPEC §5, in one place: when to try again, and when to give up.
 *
 * The first attempt after a lost connection waits a random time up to `firstAttemptJitterMs`,
 * so the clients of a server that went away do not all come back in the same instant. Each
 * later attempt waits an exponential back-off (`initialBackoffMs`, doubling, at most
 * `maxBackoffMs`) with full jitter in its upper half. The policy gives up once `retryCount`
 * attempts are used, or `retryTimeMs` has passed since the connection was lost (or the login
 * began). A server's `retry_after_ms` (admission control) or `GoAway` delay is honoured as a
 * floor.
 */

export interface BackoffConfig {
  firstAttemptJitterMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffConfig> = Object.freeze({
  firstAttemptJitterMs: 500,
  initialBackoffMs: 1000,
  maxBackoffMs: 8000,
});

/** The Web SDK's login defaults (SPEC §5): 10 attempts within 30 s. */
export const DEFAULT_RETRY_COUNT = 10;
export const DEFAULT_RETRY_TIME_S = 30;

export class Backoff {
  /** Attempts made in the current round, counting the one in progress. */
  attempt = 0;
  private _startedAt = 0;

  constructor(
    private readonly _config: BackoffConfig,
    readonly retryCount: number,
    readonly retryTimeMs: number,
    private readonly _random: () => number,
  ) {}

  /** A round begins (a login, or a lost connection): the first attempt is under way. */
  start(now: number): void {
    this.attempt = 1;
    this._startedAt = now;
  }

  /** The round ended in success. */
  reset(): void {
    this.attempt = 0;
  }

  /** The delay before the first attempt after a lost connection. */
  firstDelay(): number {
    return Math.floor(this._random() * this._config.firstAttemptJitterMs);
  }

  /**
   * The current attempt failed at `now`: the delay before the next one, or `undefined` when the
   * attempts or the time are used up. Counts the next attempt.
   */
  next(now: number): number | undefined {
    if (this.attempt >= this.retryCount || now - this._startedAt >= this.retryTimeMs) {
      return undefined;
    }
    this.attempt += 1;
    const exp = Math.min(this.attempt - 2, 16);
    const base = Math.min(this._config.initialBackoffMs * 2 ** exp, this._config.maxBackoffMs);
    const half = base / 2;
    return Math.floor(half + this._random() * half);
  }
}
