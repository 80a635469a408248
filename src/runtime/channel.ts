// A control connection as typed messages: JSON text frames, validated on arrival. A malformed
// message closes that one connection with its close code and a logged reason; it never throws.
import { WebSocket, type RawData } from 'ws';
import type { ZodType } from 'zod';
import { parseMessage } from '../protocol/control.js';
import { closeReason, isRingswarmError, RingswarmError } from '../protocol/errors.js';

export interface ChannelHandlers<In> {
  onMessage(msg: In): void;
  onClose(code: number, reason: string): void;
}

export interface Channel<In, Out> {
  send(msg: Out): void;
  setHandlers(h: ChannelHandlers<In>): void;
  close(code: number, reason: string): void;
  readonly open: boolean;
}

function text(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString();
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString();
  return data.toString();
}

export function wsChannel<In, Out>(ws: WebSocket, schema: ZodType<In>, log: (line: string) => void): Channel<In, Out> {
  let handlers: ChannelHandlers<In> | null = null;
  const early: In[] = [];
  ws.on('message', (data, isBinary) => {
    let msg: In;
    try {
      if (isBinary) throw new RingswarmError('RS_ERR_BAD_MESSAGE', 'binary frame on a control connection');
      msg = parseMessage(schema, text(data));
    } catch (e) {
      const err = isRingswarmError(e) ? e : new RingswarmError('RS_ERR_BAD_MESSAGE', String(e));
      log(`control message rejected: ${err.code}: ${err.message}`);
      ws.close(err.closeCode, closeReason(err));
      return;
    }
    if (handlers) handlers.onMessage(msg);
    else early.push(msg);
  });
  let closed: [number, string] | null = null;
  ws.on('close', (code, reason) => {
    closed = [code, reason.toString()];
    handlers?.onClose(code, reason.toString());
  });
  ws.on('error', (e) => log(`control connection error: ${e.message}`));
  return {
    send(msg: Out) {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
    },
    setHandlers(h) {
      handlers = h;
      for (const m of early.splice(0)) h.onMessage(m);
      if (closed) h.onClose(...closed);
    },
    close(code, reason) {
      ws.close(code, reason);
    },
    get open() {
      return ws.readyState === WebSocket.OPEN;
    },
  };
}

/**
 * Two ends of an in-memory control connection (for simulations): each message is validated by the
 * receiving end's schema as it would be off the wire, and delivered on a later microtask.
 */
export function channelPair<A, B>(schemaA: ZodType<A>, schemaB: ZodType<B>): [Channel<A, B>, Channel<B, A>] {
  let open = true;
  /** Set once the close has been delivered: later messages are dropped. */
  let closedAt = false;
  const mk = <In, Out>(schema: ZodType<In>): Channel<In, Out> & { peer?: Channel<Out, In>; deliver(text: string): void; closed(code: number, reason: string): void } => {
    let handlers: ChannelHandlers<In> | null = null;
    const early: In[] = [];
    const end = {
      peer: undefined as (Channel<Out, In> & { deliver(text: string): void; closed(code: number, reason: string): void }) | undefined,
      send(msg: Out) {
        if (!open) return;
        const text = JSON.stringify(msg);
        queueMicrotask(() => end.peer?.deliver(text));
      },
      deliver(text: string) {
        // Messages queued before a close still arrive (microtasks run in order), as on a socket.
        if (closedAt) return;
        let msg: In;
        try {
          msg = parseMessage(schema, text);
        } catch (e) {
          // As over WebSockets: a malformed message closes the connection, it never throws.
          const err = isRingswarmError(e) ? e : new RingswarmError('RS_ERR_BAD_MESSAGE', String(e));
          end.close(err.closeCode, closeReason(err));
          return;
        }
        if (handlers) handlers.onMessage(msg);
        else early.push(msg);
      },
      closed(code: number, reason: string) {
        handlers?.onClose(code, reason);
      },
      setHandlers(h: ChannelHandlers<In>) {
        handlers = h;
        for (const m of early.splice(0)) h.onMessage(m);
      },
      close(code: number, reason: string) {
        if (!open) return;
        open = false;
        queueMicrotask(() => {
          closedAt = true;
          end.closed(code, reason);
          end.peer?.closed(code, reason);
        });
      },
      get open() {
        return open;
      },
    };
    return end;
  };
  const a = mk<A, B>(schemaA);
  const b = mk<B, A>(schemaB);
  a.peer = b as never;
  b.peer = a as never;
  return [a, b];
}
