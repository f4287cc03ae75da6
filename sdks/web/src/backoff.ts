/**
 * The reconnect policy of SPEC §5, in one place: when to try again, and when to give up.
 *
 * The first attempt after a lost connection waits a random time up to `firstAttemptJitterMs`,
 * so the clients of a server that went away do not all come back in the same instant. Each
 * later attempt waits an exponential back-off (`initialBackoffMs`, doubling, at most
 * `maxBackoffMs`) with full jitter in its upper half. The policy gives up once `retryCount`
 * attempts are used, or `retryTimeMs` has passed since the connection was lost (or the login
 * began). A `GoAway` delay is honoured as a floor. A login refused for load
 * (`GENERAL_E_OVERLOAD` with `retry_after_ms`, SPEC §10's admission control) is tried again
 * when the server said ([`serverWait`]), and neither the refusal nor the wait counts against
 * the attempts or the time: the server is up and hands each refused client its own time, so a
 * crowd comes back as a ramp.
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

/** The longest a server's retry-after is taken at its word (a server's own maximum is a minute
 * by default), so no reply can park a client for days. */
export const MAX_SERVER_WAIT_MS = 300_000;

/** The most jitter added to a server's retry-after (at most a sixteenth of it). */
export const MAX_SERVER_WAIT_JITTER_MS = 250;

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

  /**
   * The server refused the attempt for load and asked for `retryAfterMs`: the delay before the
   * same attempt runs again (the wait, capped, plus a little jitter). The round's time is moved
   * on by as much, so the wait uses none of it.
   */
  serverWait(retryAfterMs: number): number {
    const wait = Math.min(retryAfterMs, MAX_SERVER_WAIT_MS);
    const delay = wait + Math.floor(this._random() * Math.min(wait / 16, MAX_SERVER_WAIT_JITTER_MS));
    this._startedAt += delay;
    return delay;
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
