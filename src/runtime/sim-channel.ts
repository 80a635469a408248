// Two ends of a control connection on a clock (for `ringswarm sim`): messages go as objects, in
// order, `latencyMs` after they are sent; a close reaches both ends' handlers once, after the
// messages sent before it. A paused end (a hung worker) holds what arrives until resumed.
import type { Channel, ChannelHandlers } from './channel.js';
import type { Clock } from './clock.js';

export interface SimChannel<In, Out> extends Channel<In, Out> {
  /** Hold incoming messages (and a close) until resume(). */
  pause(): void;
  /** Deliver what was held, in order, one per clock event, then go on as before. */
  resume(): void;
}

type Arrival<In> = { msg: In } | { close: [number, string] };

class SimEnd<In, Out> implements SimChannel<In, Out> {
  peer!: SimEnd<Out, In>;
  private handlers: ChannelHandlers<In> | null = null;
  /** Arrived before setHandlers, or while paused, in order. */
  private readonly held: Arrival<In>[] = [];
  private paused = false;
  private flushing = false;
  private closeDelivered = false;

  constructor(
    private readonly clock: Clock,
    private readonly latencyMs: number,
    private readonly state: { open: boolean },
  ) {}

  get open(): boolean {
    return this.state.open;
  }

  send(msg: Out): void {
    if (!this.state.open) return;
    this.clock.setTimer(this.latencyMs, () => this.peer.arrive({ msg }));
  }

  close(code: number, reason: string): void {
    if (!this.state.open) return;
    this.state.open = false;
    // Both ends hear of it after what was already in flight (timers of equal time fire in order).
    this.clock.setTimer(this.latencyMs, () => {
      this.arrive({ close: [code, reason] });
      this.peer.arrive({ close: [code, reason] });
    });
  }

  setHandlers(h: ChannelHandlers<In>): void {
    this.handlers = h;
    if (!this.paused) this.deliverHeld();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.flushing || this.held.length === 0) return;
    this.flushing = true;
    const next = () => {
      if (this.paused || !this.handlers) {
        this.flushing = false;
        return;
      }
      this.deliver(this.held.shift()!);
      if (this.held.length > 0) this.clock.setTimer(0, next);
      else this.flushing = false;
    };
    this.clock.setTimer(0, next);
  }

  arrive(a: Arrival<In>): void {
    if (this.paused || !this.handlers || this.held.length > 0) this.held.push(a);
    else this.deliver(a);
  }

  /** As wsChannel: what came before the handlers is handed over at once. */
  private deliverHeld(): void {
    if (this.flushing) return;
    for (const a of this.held.splice(0)) this.deliver(a);
  }

  private deliver(a: Arrival<In>): void {
    if (this.closeDelivered) return;
    if ('close' in a) {
      this.closeDelivered = true;
      this.handlers!.onClose(...a.close);
    } else {
      this.handlers!.onMessage(a.msg);
    }
  }
}

/** A connected pair: what one end sends, the other receives `latencyMs` later on `clock`. */
export function simChannelPair<A, B>(clock: Clock, latencyMs: number): [SimChannel<A, B>, SimChannel<B, A>] {
  const state = { open: true };
  const a = new SimEnd<A, B>(clock, latencyMs, state);
  const b = new SimEnd<B, A>(clock, latencyMs, state);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
