// A WebSocket server whose connections must finish the HTTP upgrade within a deadline: a peer
// that sends its upgrade request one byte a second is cut off, not kept for a minute or more
// (Node's own header timeout is checked only every 30 s). Plain HTTP goes to the caller's handler
// (the operator's requests), else gets 426, as from ws itself; it too must be answered in time.
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** Time for a connection to finish its WebSocket upgrade, and then (checked by the caller) to say hello. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;

export interface GuardedWsServerOptions {
  host: string;
  port: number;
  maxPayload: number;
  handshakeTimeoutMs?: number;
  /** A connection cut off because its upgrade did not finish in time (`from`: its address). */
  onHandshakeTimeout(from: string): void;
  onConnection(ws: WebSocket, req: IncomingMessage): void;
  /** A plain HTTP request (not an upgrade). */
  onRequest?(req: IncomingMessage, res: ServerResponse): void;
}

/** Listen; resolves once listening. Closing the returned server also closes the HTTP server under it. */
export async function listenGuarded(o: GuardedWsServerOptions): Promise<{ wss: WebSocketServer; port: number }> {
  const ms = o.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  const http = createServer((req, res) => {
    if (o.onRequest) return o.onRequest(req, res);
    const body = STATUS_CODES[426]!;
    res.writeHead(426, { 'Content-Length': body.length, 'Content-Type': 'text/plain', Connection: 'close' });
    res.end(body);
  });
  const pending = new Map<Socket, NodeJS.Timeout>();
  http.on('connection', (socket: Socket) => {
    const t = setTimeout(() => {
      pending.delete(socket);
      o.onHandshakeTimeout(socket.remoteAddress ?? '?');
      socket.destroy();
    }, ms);
    pending.set(socket, t);
    socket.once('close', () => {
      clearTimeout(t);
      pending.delete(socket);
    });
  });
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: o.maxPayload });
  // ws repeats the HTTP server's errors here; the HTTP server's own listener below handles them.
  wss.on('error', () => {});
  wss.on('connection', (ws, req) => {
    const t = pending.get(req.socket);
    if (t) clearTimeout(t);
    pending.delete(req.socket);
    o.onConnection(ws, req);
  });
  wss.once('close', () => {
    for (const t of pending.values()) clearTimeout(t);
    pending.clear();
    http.close();
    http.closeAllConnections();
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen({ host: o.host, port: o.port }, () => {
      http.off('error', reject);
      http.on('error', () => {}); // after listening: per-connection errors are the sockets' own
      resolve();
    });
  });
  return { wss, port: (http.address() as AddressInfo).port };
}

/** A host as it goes in a URL: an IPv6 address in brackets. */
export function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
