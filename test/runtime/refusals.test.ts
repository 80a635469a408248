// Slow or hostile connections: the upgrade handshake has a deadline, and refusals are counted and
// summed up instead of logged one line each.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { FramePool } from '../../src/runtime/frame-pool.js';
import { RefusalLog } from '../../src/runtime/refusal-log.js';
import { listenGuarded } from '../../src/runtime/ws-server.js';
import { WsTransport } from '../../src/runtime/ws-transport.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
  vi.useRealTimers();
});

const closed = (s: Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));

describe('RefusalLog', () => {
  it('logs the first five, then one summary line per period with the count and the last', () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const log = new RefusalLog((l) => lines.push(l), { first: 5, everyMs: 10_000 });
    for (let i = 0; i < 3018; i++) log.refused(`refused #${i}`);
    expect(lines).toHaveLength(5);
    expect(lines[4]).toMatch(/refused #4 \(further refusals are counted and summed up every 10 s\)/);
    vi.advanceTimersByTime(10_000);
    expect(lines).toHaveLength(6);
    expect(lines[5]).toBe('3013 more connections refused (3018 in all), the last: refused #3017');
    log.refused('one more');
    log.flush();
    expect(lines[6]).toBe('1 more connection refused (3019 in all), the last: one more');
    log.flush();
    expect(lines).toHaveLength(7);
    expect(log.count).toBe(3019);
  });
});

describe('guarded WebSocket server', () => {
  async function server(handshakeTimeoutMs: number) {
    const timeouts: string[] = [];
    const accepted: WebSocket[] = [];
    const { wss, port } = await listenGuarded({
      host: '127.0.0.1',
      port: 0,
      maxPayload: 1 << 20,
      handshakeTimeoutMs,
      onHandshakeTimeout: (from) => timeouts.push(from),
      onConnection: (ws) => accepted.push(ws),
    });
    cleanups.push(() => {
      for (const c of wss.clients) c.terminate();
      wss.close();
    });
    return { wss, port, timeouts, accepted };
  }

  it('cuts off an upgrade sent one byte at a time, and keeps a finished one open', async () => {
    const s = await server(300);
    const slow = connect(s.port, '127.0.0.1');
    const request = `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`;
    let i = 0;
    const drip = setInterval(() => !slow.destroyed && i < request.length && slow.write(request[i++]), 50);
    cleanups.push(() => clearInterval(drip));
    slow.on('error', () => {});
    const good = new WebSocket(`ws://127.0.0.1:${s.port}`);
    await new Promise((r) => good.once('open', r));
    await closed(slow);
    expect(s.timeouts).toEqual(['127.0.0.1']);
    expect(i).toBeLessThan(request.length);
    // The upgraded connection outlives the deadline.
    await new Promise((r) => setTimeout(r, 400));
    expect(good.readyState).toBe(WebSocket.OPEN);
    expect(s.accepted).toHaveLength(1);
    good.terminate();
  });

  it('answers plain HTTP with 426, and closing the server frees its port', async () => {
    const s = await server(5_000);
    const res = await fetch(`http://127.0.0.1:${s.port}/`);
    expect(res.status).toBe(426);
    await new Promise<void>((r) => s.wss.close(() => r()));
    await new Promise((r) => setTimeout(r, 50));
    const again = connect(s.port, '127.0.0.1');
    const err = await new Promise<NodeJS.ErrnoException>((r) => again.once('error', r));
    expect(err.code).toBe('ECONNREFUSED');
  });
});

describe('WsTransport data server refusals', () => {
  it('counts every refused link, logs the first five and sums up the rest at close', async () => {
    const lines: string[] = [];
    const t = new WsTransport({ host: '127.0.0.1', token: 'the-token', maxPayload: 1 << 16, log: (l) => lines.push(l), pool: new FramePool() });
    const url = await t.listen();
    cleanups.push(() => t.close());
    const hello = JSON.stringify({ type: 'data-hello', version: 1, token: 'wrong', epoch: 0, rank: 0 });
    const codes = await Promise.all(
      Array.from({ length: 40 }, (_, k) =>
        new Promise<number>((resolve) => {
          const ws = new WebSocket(url);
          ws.on('open', () => ws.send(k % 2 ? hello : '{bad json'));
          ws.on('close', (code) => resolve(code));
          ws.on('error', () => {});
        }),
      ),
    );
    expect(new Set(codes)).toEqual(new Set([4003, 4001]));
    expect(t.rejected).toBe(40);
    expect(lines.filter((l) => /refused/.test(l))).toHaveLength(5);
    t.close();
    expect(lines.filter((l) => /refused/.test(l))).toHaveLength(6);
    expect(lines.at(-1)).toMatch(/^35 more connections refused \(40 in all\), the last: data link from 127\.0\.0\.1 refused: RS_ERR_/);
  });

  it('cuts off a slow upgrade to a worker data server and counts it', async () => {
    const lines: string[] = [];
    const t = new WsTransport({ host: '127.0.0.1', token: 'the-token', maxPayload: 1 << 16, log: (l) => lines.push(l), pool: new FramePool(), linkTimeoutMs: 2000 });
    const url = await t.listen();
    cleanups.push(() => t.close());
    const slow = connect(Number(new URL(url).port), '127.0.0.1');
    slow.on('error', () => {});
    slow.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await closed(slow);
    expect(t.rejected).toBe(1);
    expect(lines).toEqual([expect.stringMatching(/^data link from 127\.0\.0\.1 refused: RS_ERR_TIMEOUT: no WebSocket upgrade within 2000 ms$/)]);
  }, 20_000);
});
