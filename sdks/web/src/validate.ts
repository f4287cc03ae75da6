/**
 * Parameter validation of SPEC §2, in one file: the same rules as `beckon_proto::validate` (and
 * the Rust client's checks around it), so a bad call fails here, at once and with the same code,
 * without a round trip. The server checks again; it never trusts a client.
 *
 * - Names (accounts, channel names, attribute names): 1..=max visible characters; accounts
 *   also without whitespace. Characters are Unicode scalar values, not UTF-16 units or bytes.
 * - Reserved: no account starts with `_` (the server's own names, such as `_system`, the sender
 *   of system events), and no channel does but the special ones (`_agora_user_online`,
 *   `_agora_channel_event`).
 * - Values: visible characters, empty allowed, bounded in characters.
 * - Message bodies and call `extra`: any text, bounded in bytes of UTF-8.
 * - Visible: not a control character (Unicode category Cc). A string with a lone surrogate is
 *   not text at all and is refused (it could not be sent as UTF-8 unchanged).
 * - Empty or malformed → `GENERAL_E_WRONG_PARAM` (1004); too long → `GENERAL_E_LARGE_PARAM`
 *   (1005).
 */
import { CallError, Codes } from "./codes.js";

/** Size limits; the defaults are the spec's, and the login reply announces the server's. */
export interface Limits {
  maxNameChars: number;
  maxUserAttrValueChars: number;
  maxChannelAttrValueChars: number;
  maxMessageBytes: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxNameChars: 128,
  maxUserAttrValueChars: 1024,
  maxChannelAttrValueChars: 8096,
  maxMessageBytes: 8192,
});

/** Limits announced by a server; zero (absent) fields fall back to the defaults. */
export function limitsFromWire(w: {
  maxNameChars: number;
  maxUserAttrValueChars: number;
  maxChannelAttrValueChars: number;
  maxMessageBytes: number;
}): Limits {
  const pick = (v: number, d: number) => (v > 0 ? v : d);
  return {
    maxNameChars: pick(w.maxNameChars, DEFAULT_LIMITS.maxNameChars),
    maxUserAttrValueChars: pick(w.maxUserAttrValueChars, DEFAULT_LIMITS.maxUserAttrValueChars),
    maxChannelAttrValueChars: pick(
      w.maxChannelAttrValueChars,
      DEFAULT_LIMITS.maxChannelAttrValueChars,
    ),
    maxMessageBytes: pick(w.maxMessageBytes, DEFAULT_LIMITS.maxMessageBytes),
  };
}

/** The one user attribute name starting with `_` that users may set (SPEC §6). */
export const CONN_TIMEOUT_ATTR = "_conn_timeout";

const CONTROL = /\p{Cc}/u;
const WHITESPACE = /\p{White_Space}/u;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const DTMF = /^[0-9*#]+$/;

function wrong(message: string): CallError {
  return new CallError(Codes.GENERAL_E_WRONG_PARAM, message);
}

/**
 * The string an argument stands for: strings as they are, finite numbers in decimal (apps
 * often use numeric ids as accounts); anything else is refused.
 */
export function text(what: string, value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  throw wrong(`${what} must be a string, not ${value === null ? "null" : typeof value}`);
}

/** Like [`text`], with `undefined` and `null` read as "". */
export function optionalText(what: string, value: unknown): string {
  return value === undefined || value === null ? "" : text(what, value);
}

/** Unicode scalar values in `s`, counting no further than `max + 1`. */
function charCount(s: string, max: number): number {
  let n = 0;
  for (let i = 0; i < s.length && n <= max; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Bytes of `s` as UTF-8 (lone surrogates are refused before this is asked). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function wellFormed(what: string, value: string): void {
  if (LONE_SURROGATE.test(value)) {
    throw wrong(`${what} is not valid Unicode (it holds a lone surrogate)`);
  }
}

function checkChars(what: string, value: string, max: number, allowEmpty: boolean): void {
  if (!allowEmpty && value.length === 0) throw wrong(`${what} must not be empty`);
  wellFormed(what, value);
  const bad = CONTROL.exec(value);
  if (bad) {
    const hex = bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
    throw wrong(`${what} contains the control character U+${hex}`);
  }
  if (charCount(value, max) > max) {
    throw new CallError(Codes.GENERAL_E_LARGE_PARAM, `${what} is longer than ${max} characters`);
  }
}

/** A channel name or attribute name: 1..=max visible characters. */
export function name(limits: Limits, what: string, value: unknown): string {
  const s = text(what, value);
  checkChars(what, s, limits.maxNameChars, false);
  return s;
}

/** What accounts and channel names SPEC reserves start with. */
export const RESERVED_PREFIX = "_";

/** The special channels, which only sessions with the server privilege may join or list. */
export const USER_ONLINE_CHANNEL = "_agora_user_online";
export const CHANNEL_EVENT_CHANNEL = "_agora_channel_event";

export function isSpecialChannel(channel: string): boolean {
  return channel === USER_ONLINE_CHANNEL || channel === CHANNEL_EVENT_CHANNEL;
}

/** A name without whitespace (an account, an App ID). */
export function identifier(limits: Limits, what: string, value: unknown): string {
  const s = name(limits, what, value);
  if (WHITESPACE.test(s)) throw wrong(`${what} must not contain whitespace`);
  return s;
}

/** An account: a name without whitespace, not starting with `_`. */
export function account(limits: Limits, what: string, value: unknown): string {
  const s = identifier(limits, what, value);
  if (s.startsWith(RESERVED_PREFIX)) {
    throw wrong(`${what} ${JSON.stringify(s)}: names starting with _ are reserved`);
  }
  return s;
}

/** A channel name: not starting with `_` unless it is a special channel. */
export function channel(limits: Limits, what: string, value: unknown): string {
  const s = name(limits, what, value);
  if (s.startsWith(RESERVED_PREFIX) && !isSpecialChannel(s)) {
    throw wrong(
      `${what} ${JSON.stringify(s)}: names starting with _ are reserved ` +
        `(${USER_ONLINE_CHANNEL} and ${CHANNEL_EVENT_CHANNEL} are the only such channels)`,
    );
  }
  return s;
}

/** An attribute name. */
export const attrName = name;

/** A user attribute value: visible, empty allowed (it deletes), bounded in characters. */
export function userAttrValue(limits: Limits, what: string, value: unknown): string {
  const s = optionalText(what, value);
  checkChars(what, s, limits.maxUserAttrValueChars, true);
  return s;
}

/** A channel attribute value. */
export function channelAttrValue(limits: Limits, what: string, value: unknown): string {
  const s = optionalText(what, value);
  checkChars(what, s, limits.maxChannelAttrValueChars, true);
  return s;
}

/** A p2p or channel message body: any text, empty allowed, bounded in bytes of UTF-8. */
export function message(limits: Limits, what: string, value: unknown): string {
  const s = optionalText(what, value);
  wellFormed(what, s);
  const bytes = utf8Length(s);
  if (bytes > limits.maxMessageBytes) {
    throw new CallError(
      Codes.GENERAL_E_LARGE_PARAM,
      `${what} is ${bytes} bytes; the limit is ${limits.maxMessageBytes} bytes`,
    );
  }
  return s;
}

/** A client-chosen message id or call id: empty allowed, visible, bounded like a name. */
export function id(limits: Limits, what: string, value: unknown): string {
  const s = optionalText(what, value);
  checkChars(what, s, limits.maxNameChars, true);
  return s;
}

/**
 * A user attribute write: built-in names are read-only except `_conn_timeout`, whose value must
 * be a whole number of seconds (or empty, to delete).
 */
export function userAttrWrite(limits: Limits, attr: unknown, value: unknown): [string, string] {
  const n = attrName(limits, "attribute name", attr);
  const v = userAttrValue(limits, "attribute value", value);
  if (n.startsWith("_")) {
    if (n !== CONN_TIMEOUT_ATTR) {
      throw wrong(`attribute ${n} is built-in and read-only; only ${CONN_TIMEOUT_ATTR} may be set`);
    }
    if (v !== "" && (!/^\+?[0-9]+$/.test(v) || Number(v) > 0xffff_ffff)) {
      throw wrong(`${CONN_TIMEOUT_ATTR} must be a whole number of seconds, not ${JSON.stringify(v)}`);
    }
  }
  return [n, v];
}

/**
 * Call `extra`: empty, or a JSON object, bounded in bytes. Objects are accepted too and sent as
 * their JSON.
 */
export function extra(limits: Limits, what: string, value: unknown): string {
  const s =
    value !== null && typeof value === "object" ? JSON.stringify(value) : optionalText(what, value);
  message(limits, what, s);
  if (s.trim() === "") return s;
  let parsed: unknown;
  try {
    parsed = JSON.parse(s);
  } catch (e) {
    throw wrong(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw wrong(`${what} must be a JSON object`);
  }
  return s;
}

/** DTMF digits: `[0-9*#]+`. */
export function dtmf(what: string, value: unknown): string {
  const s = text(what, value);
  if (!DTMF.test(s)) throw wrong(`${what} must be digits, * or #`);
  return s;
}
