/** The core's configuration and the versions it announces. */
import { DEFAULT_BACKOFF, type BackoffConfig } from "../backoff.js";

/** The protocol version this core speaks. */
export const PROTOCOL_VERSION = 1;

/** The SDK's version as `1MMmmppbbb` (sent in the login). Kept equal to package.json's. */
export const SDK_VERSION_STRING = "0.1.0";
export const SDK_VERSION_NUMBER = 1_000_000_000 + 0 * 10_000_000 + 1 * 100_000 + 0 * 1000 + 0;

export interface ClientConfig extends BackoffConfig {
  /** How long an event may wait before it is acknowledged. */
  ackDelayMs: number;
  /** Acknowledge at once when this many events are unacknowledged. */
  ackEvery: number;
  /** How long connecting plus logging in may take before the attempt counts as failed. */
  connectTimeoutMs: number;
  /** Server message ids remembered to drop re-deliveries. */
  dedupWindow: number;
  /** A number in [0, 1): message ids and reconnect jitter. */
  random: () => number;
}

export const DEFAULT_CLIENT_CONFIG: Readonly<ClientConfig> = Object.freeze({
  ...DEFAULT_BACKOFF,
  ackDelayMs: 20,
  ackEvery: 32,
  connectTimeoutMs: 10_000,
  dedupWindow: 4096,
  random: Math.random,
});

/** What the core asks its driver to do with the connection. */
export type ConnectionCommand = "open" | "close";
