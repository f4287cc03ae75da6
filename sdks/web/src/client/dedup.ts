/**
 * Dropping re-delivered messages: the server message ids seen lately, in a bounded window.
 * Mirrors `beckon-client`'s `client/dedup.rs`.
 */
export class Dedup {
  private readonly _seen = new Set<bigint>();
  private readonly _order: bigint[] = [];
  private readonly _window: number;

  constructor(window: number) {
    this._window = window;
  }

  /** Records a server message id; false if it was seen before. */
  _firstTime(id: bigint): boolean {
    if (this._seen.has(id)) return false;
    this._seen.add(id);
    this._order.push(id);
    if (this._order.length > this._window) {
      this._seen.delete(this._order.shift()!);
    }
    return true;
  }
}
