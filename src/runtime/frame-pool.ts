// Reusable frame buffers. A frame goes back to the pool only once the transport says it was
// written: a socket write does not copy, so a buffer reused earlier would send changed bytes.
import type { Arena } from '../collective/simd.js';
import { allocFrame, FRAME_HEADER_BYTES } from '../protocol/frame.js';

export class FramePool {
  private readonly free = new Map<number, Uint8Array[]>();
  private readonly mine = new WeakSet<Uint8Array>();
  private bytes = 0;
  allocated = 0;
  reused = 0;

  private arena: Arena | null = null;

  constructor(private readonly maxBytes = 128 << 20) {}

  /**
   * Take new frames from `arena` (WebAssembly memory, where reductions run as SIMD) while it has
   * room, else from ordinary memory. Frames already handed out stay valid; free ones are dropped.
   */
  useArena(arena: Arena | null): void {
    this.arena = arena;
    this.free.clear();
    this.bytes = 0;
  }

  private fresh(payloadBytes: number): { frame: Uint8Array; payload: Uint8Array } {
    if (this.arena) {
      try {
        // 16-aligned start: the payload, 40 bytes in, is 8-aligned for Float64Array views.
        const frame = this.arena.allocBytes(FRAME_HEADER_BYTES + payloadBytes, 16);
        return { frame, payload: frame.subarray(FRAME_HEADER_BYTES) };
      } catch {
        // Arena full: ordinary memory still works, with the JS reduction loop.
      }
    }
    return allocFrame(payloadBytes);
  }

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
    const f = this.fresh(payloadBytes);
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
