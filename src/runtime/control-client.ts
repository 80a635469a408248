// A worker's side of the control connection: dial the coordinator and hand back a typed Channel.
// Here so that the worker folder never touches `ws` itself (the runtime is the only I/O layer).
import { WebSocket } from 'ws';
import type { ZodType } from 'zod';
import { wsChannel, type Channel } from './channel.js';

export interface ControlClientEvents<In, Out> {
  /** The connection is open: messages flow from here on. */
  open(channel: Channel<In, Out>): void;
  /** Any socket error, before or after `open` (the caller decides whether it is fatal). */
  error(e: Error): void;
}

export function connectControl<In, Out>(url: string, schema: ZodType<In>, log: (line: string) => void, on: ControlClientEvents<In, Out>): void {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.on('error', (e) => on.error(e));
  ws.on('open', () => on.open(wsChannel<In, Out>(ws, schema, log)));
}
