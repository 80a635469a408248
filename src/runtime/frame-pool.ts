// Reusable frame buffers. A frame goes back to the pool only once the transport says it was
// written: a socket write does not copy, so a buffer reused earlier would send changed bytes.
import { allocFrame, FRAME_HEADER_BYTES } from '../protocol/frame.js';

export class FramePool {
  private readonly free = new Map<number, Uint8Array[]>();
  private readonly mine = new WeakSet<Uint8Array>();
  private bytes = 0;
  allocated = 0;
  reused = 0;

  constructor(private readonly maxBytes = 128 << 20) {}

  /** A frame with room for `payloadBytes` after the header (contents undefined). */
  acquire(payloadBytes: number): { frame: Uint8Array; payload: Uint8Array } {
    const list = this.free.get(FRAME_HEADER_BYTES + payloadBytes);
    const hit = list?.pop();
    if (hit) {
      this.bytes -= hit.byteLength;
      this.reused++;
      return { frame: hit, payload: hit.subarray(FRAME_HEADER_BYTES) };
    }
    this.allocated++;
    const f = allocFrame(payloadBytes);
    this.mine.add(f.frame);
    return f;
  }

  /** Whether `frame` came from this pool (only those may be released to it). */
  owns(frame: Uint8Array): boolean {
    return this.mine.has(frame);
  }

  /** Give a frame back once nothing reads it any more. Frames from elsewhere are ignored. */
  release(frame: Uint8Array): void {
    if (!this.mine.has(frame) || this.bytes + frame.byteLength > this.maxBytes) return;
    const list = this.free.get(frame.byteLength);
    if (list) list.push(frame);
    else this.free.set(frame.byteLength, [frame]);
    this.bytes += frame.byteLength;
  }
}
