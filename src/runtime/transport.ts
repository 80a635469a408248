// The data plane seen by a rank: send sealed frames to ranks, receive frames from ranks.
// Two implementations: WebSockets (ws-transport.ts) and in memory (memory-transport.ts).
import type { FramePool } from './frame-pool.js';

export interface LinkEvents {
  /** A whole binary frame arrived from `from` (not yet validated). */
  onFrame(from: number, frame: Uint8Array): void;
  /** The link with `peer` closed or failed; `reason` says why. */
  onLinkLost(peer: number, reason: string): void;
}

export interface PeerAddress {
  rank: number;
  dataUrl: string;
}

export interface Transport {
  /** The pool received frames are read into, when the transport has one (the op runner shares it). */
  readonly pool?: FramePool;
  /** Where peers reach this rank's data server. */
  readonly dataUrl: string;
  /**
   * Take `rank` in the ring of `epoch`: close links of older epochs, open the link on which we
   * receive from `prev`, and wait until `next` has opened the one on which we send to it; and the
   * same both ways with every one of `peers` (the partners of an algorithm that is not a ring).
   */
  ring(epoch: number, rank: number, prev: PeerAddress, next: PeerAddress, timeoutMs: number, peers?: readonly PeerAddress[]): Promise<void>;
  /**
   * Queue a sealed frame for `to`: one buffer, or a 40-byte header and the payload as a second
   * buffer (sent as two fragments of one message, so a payload that sits in a caller's buffer
   * goes out without a copy). The caller does not change those bytes until `written` is called:
   * ok once they are handed to the kernel; not ok if the link failed (the bytes may still be
   * queued, so a pooled buffer must not be reused then).
   */
  send(to: number, frame: Uint8Array | readonly [Uint8Array, Uint8Array], written?: (ok: boolean) => void): void;
  /** Bytes queued but not yet handed to the kernel, over all links. */
  readonly pendingBytes: number;
  /** Resolves once pendingBytes is at most `bytes` (sender-side backpressure between ops). */
  drained(bytes: number): Promise<void>;
  setEvents(events: LinkEvents): void;
  /** Close the link on which we receive from `peer`, telling it why (a bad frame, say). */
  dropLink(peer: number, closeCode: number, reason: string): void;
  close(): void;
}
