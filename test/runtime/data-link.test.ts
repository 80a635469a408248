// Our data-link WebSocket client against a real `ws` server on 127.0.0.1.
import { createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { DataLinkClient } from '../../src/runtime/data-link-client.js';

const servers: { close(): void }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function wsServer(): Promise<{ url: string; connection: Promise<{ ws: WebSocket; hello: string }> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  servers.push({ close: () => (wss.clients.forEach((c) => c.terminate()), wss.close()) });
  await new Promise((r) => wss.once('listening', r));
  const connection = new Promise<{ ws: WebSocket; hello: string }>((resolve) =>
    wss.once('connection', (ws) => ws.once('message', (m) => resolve({ ws, hello: m.toString() }))),
  );
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, connection };
}

function client(url: string) {
  const messages: Uint8Array[] = [];
  let closed: [number, string] | null = null;
  const c = new DataLinkClient({
    url,
    maxPayload: 8 << 20,
    timeoutMs: 2000,
    buffer: (n) => new Uint8Array(n),
    onMessage: (m) => messages.push(m),
    onClose: (code, reason) => (closed = [code, reason]),
  });
  return { c, messages, closed: () => closed };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  return cond();
};

describe('DataLinkClient', () => {
  it('handshakes, says hello, and receives binary messages of every size exactly', async () => {
    const s = await wsServer();
    const k = client(s.url);
    await k.c.open('{"type":"data-hello"}');
    const { ws, hello } = await s.connection;
    expect(hello).toBe('{"type":"data-hello"}');
    const sizes = [0, 1, 125, 126, 65535, 65536, 1 << 20, 3 << 20];
    const sent = sizes.map((n) => Buffer.from(Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff)));
    for (const b of sent) ws.send(b);
    expect(await until(() => k.messages.length === sizes.length)).toBe(true);
    k.messages.forEach((m, i) => expect(Buffer.from(m).equals(sent[i])).toBe(true));
    k.c.destroy();
  });

  it('reports the close code and reason the server closes with', async () => {
    const s = await wsServer();
    const k = client(s.url);
    await k.c.open('hi');
    (await s.connection).ws.close(4003, 'RS_ERR_AUTH: wrong token');
    expect(await until(() => k.closed() !== null)).toBe(true);
    expect(k.closed()).toEqual([4003, 'RS_ERR_AUTH: wrong token']);
  });

  it('closes with its own code, which the server sees', async () => {
    const s = await wsServer();
    const k = client(s.url);
    await k.c.open('hi');
    const { ws } = await s.connection;
    const code = new Promise<number>((r) => ws.once('close', (c) => r(c)));
    k.c.shut(4002, 'RS_ERR_BAD_FRAME: test');
    expect(await code).toBe(4002);
  });

  it('refuses a server that does not speak WebSocket', async () => {
    const srv = createServer((sock) => sock.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const k = client(`ws://127.0.0.1:${(srv.address() as AddressInfo).port}`);
    await expect(k.c.open('hi')).rejects.toThrow(/handshake refused: HTTP\/1.1 200 OK/);
  });

  it('refuses a wrong Sec-WebSocket-Accept', async () => {
    const srv = createServer((sock) =>
      sock.once('data', () => sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n')),
    );
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const k = client(`ws://127.0.0.1:${(srv.address() as AddressInfo).port}`);
    await expect(k.c.open('hi')).rejects.toThrow(/Sec-WebSocket-Accept/);
  });

  it('fails to connect to a closed port with RS_ERR_PEER_LOST', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    await new Promise((r) => srv.close(r));
    const k = client(`ws://127.0.0.1:${port}`);
    await expect(k.c.open('hi')).rejects.toMatchObject({ code: 'RS_ERR_PEER_LOST' });
  });
});
