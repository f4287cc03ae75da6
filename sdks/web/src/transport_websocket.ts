/**
 * The WebSocket transport and the driver of the protocol core: one binary WebSocket message per
 * frame, one timer armed from `pollTimeout()`, and the delivery of the core's events to the
 * object model.
 *
 * Delivery rule: nothing reaches the application during the call that caused it. Events that
 * an API call produces (a local rejection, say) are delivered on a later turn of the event loop,
 * so an app may assign `session.onLoginSuccess` after `login` returned it. Events produced by the
 * network or a timer are already on a turn of their own and are delivered at once, in order,
 * after anything still waiting.
 */
import type { Client } from "./client.js";
import type { CoreEvent } from "./types.js";

/** The part of the WebSocket API the driver uses (the browser's, or Node's `ws` package). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketCtor = new (url: string) => WebSocketLike;

const OPEN = 1;

const now = (): number => performance.now();

export class Driver {
  private _socket: WebSocketLike | undefined;
  private _timer: ReturnType<typeof setTimeout> | undefined;
  private _timerAt: number | undefined;
  private _queue: CoreEvent[] = [];
  private _deliveryScheduled = false;

  constructor(
    readonly client: Client,
    private readonly _url: string,
    private readonly _WebSocketImpl: WebSocketCtor | undefined,
    private readonly _deliver: (ev: CoreEvent) => void,
  ) {}

  /**
   * Runs `f` on the core with the current time, then carries out what the core asks. Call it
   * for every API call: its events are delivered on a later turn.
   */
  call<T>(f: (c: Client, now: number) => T): T {
    const r = f(this.client, now());
    this._pump(true);
    return r;
  }

  /** Adds an event of the object model's own after what the core has produced so far. */
  emit(ev: CoreEvent): void {
    this._queue.push(ev);
    this._scheduleDelivery();
  }

  /** Drains the core's outputs: connection commands, frames, events, then the timer. */
  private _pump(deferred: boolean): void {
    const c = this.client;
    for (let cmd = c.pollConnection(); cmd !== undefined; cmd = c.pollConnection()) {
      if (cmd === "open") {
        this._open();
      } else {
        // What was queued before the close (a last acknowledgement) still goes out.
        this._transmit();
        this._close();
      }
    }
    this._transmit();
    for (let ev = c.pollEvent(); ev !== undefined; ev = c.pollEvent()) this._queue.push(ev);
    this._arm(c.pollTimeout());
    if (deferred) this._scheduleDelivery();
    else this._flush();
  }

  private _transmit(): void {
    const c = this.client;
    for (let frame = c.pollTransmit(); frame !== undefined; frame = c.pollTransmit()) {
      const s = this._socket;
      if (s && s.readyState === OPEN) s.send(frame);
    }
  }

  private _scheduleDelivery(): void {
    if (this._deliveryScheduled || this._queue.length === 0) return;
    this._deliveryScheduled = true;
    setTimeout(() => {
      this._deliveryScheduled = false;
      this._flush();
    }, 0);
  }

  private _flush(): void {
    while (this._queue.length > 0) {
      const ev = this._queue.shift()!;
      this._deliver(ev);
    }
  }

  private _arm(at: number | undefined): void {
    if (at === this._timerAt) return;
    if (this._timer !== undefined) clearTimeout(this._timer);
    this._timer = undefined;
    this._timerAt = at;
    if (at === undefined) return;
    this._timer = setTimeout(
      () => {
        this._timer = undefined;
        this._timerAt = undefined;
        this.client.handleTimeout(now());
        this._pump(false);
      },
      Math.max(0, at - now()),
    );
  }

  private _open(): void {
    this._close();
    let s: WebSocketLike;
    try {
      if (!this._WebSocketImpl) throw new Error("no WebSocket");
      s = new this._WebSocketImpl(this._url);
    } catch (e) {
      // A malformed URL throws at once: the attempt failed like a refused connection.
      this._queue.push({ type: "log", level: "WARNING", txt: `cannot connect to ${this._url}: ${String(e)}` });
      setTimeout(() => {
        this.client.handleDisconnected(now());
        this._pump(false);
      }, 0);
      return;
    }
    s.binaryType = "arraybuffer";
    this._socket = s;
    const current = () => this._socket === s;
    s.onopen = () => {
      if (!current()) return;
      this.client.handleConnected(now());
      this._pump(false);
    };
    s.onmessage = (ev) => {
      if (!current()) return;
      const data = ev.data;
      if (!(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data)) {
        // The protocol is binary only; a text message is a broken peer.
        this.client.handleFrame(new Uint8Array([0xff]), now());
      } else {
        const bytes =
          data instanceof ArrayBuffer
            ? new Uint8Array(data)
            : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        this.client.handleFrame(bytes, now());
      }
      this._pump(false);
    };
    const lost = () => {
      if (!current()) return;
      this._socket = undefined;
      detach(s);
      this.client.handleDisconnected(now());
      this._pump(false);
    };
    s.onclose = lost;
    s.onerror = lost;
  }

  private _close(): void {
    const s = this._socket;
    if (!s) return;
    this._socket = undefined;
    detach(s);
    try {
      s.close(1000, "");
    } catch {
      // Closing a socket that never opened may throw in some implementations; it is gone.
    }
  }
}

function detach(s: WebSocketLike): void {
  s.onopen = null;
  s.onmessage = null;
  s.onclose = null;
  s.onerror = null;
}
