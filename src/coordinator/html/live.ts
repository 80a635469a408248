// `run --ui-port P`: the report's page served live at http://127.0.0.1:P/ while the run lasts, with
// a WebSocket (/ws) that pushes what changed: the rank grid (each rank's state), the step series,
// the heat map's new columns, faults and stragglers as they are found. Updates are built on a
// timer, a few times a second, and only while a browser is connected: however many messages the
// workers send, the run pays for at most two views a second, and nothing with no one watching.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { RingswarmUsageError } from '../../protocol/errors.js';
import type { RunReport } from '../config.js';
import type { StepAgg } from '../ledger.js';
import type { CoordinatorMachine, Member } from '../machine.js';
import { renderHtml } from './html.js';
import { buildRunView, heatGrouping, liveStatus, runFacts, type RunView } from './view.js';

export const UI_HOST = '127.0.0.1';
/** How often a connected browser gets an update. */
export const UPDATE_MS = 500;
/** A browser this far behind (bytes queued to it) skips updates until it catches up. */
const MAX_BUFFERED = 4 << 20;

export interface DashboardSource {
  machine: CoordinatorMachine;
  /** The run report as of now (the coordinator's pure buildReport). */
  report(): RunReport;
  /** The machine's clock: the run's start, and now. */
  t0: number;
  now(): number;
  /** Where the dashboard says, at its close, what it cost the coordinator. */
  log?(line: string): void;
}

export interface Dashboard {
  url: string;
  /** Browsers connected now. */
  clients(): number;
  /** Push the final view (the run's own report) to every browser, then close the server and every connection. */
  close(final?: RunReport): Promise<void>;
}

/** The live view: the report's page of the run so far, with the rank grid. */
export function liveView(src: DashboardSource, report = src.report()): RunView {
  const now = src.now();
  const v = buildRunView(report, runFacts(src.machine, src.t0, now), `ringswarm run (live): ${report.workers} workers x ${report.cardsPerWorker} cards, seed ${report.seed}`);
  v.live = liveStatus(src.machine.statusSnapshot(now), src.machine.trainingStart, now);
  return v;
}

export async function serveDashboard(src: DashboardSource, port: number): Promise<Dashboard> {
  const clients = new Set<WebSocket>();
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 });
  let timer: NodeJS.Timeout | null = null;
  // What the browsers were last sent of the steps: each counted step's aggregate (a rollback or a re-run replaces it), and the heat map's grouping.
  let sent: StepAgg[] = [];
  let sentGrouping = '';

  // A worker lost between two updates shows dead in the next one, even when its replacement holds its rank by then.
  const shownGone = new WeakSet<Member>();
  const newlyGone = (): number[] => {
    const ranks: number[] = [];
    for (const x of src.machine.everyone) {
      if (!x.gone || shownGone.has(x)) continue;
      shownGone.add(x);
      if (x.rank >= 0) ranks.push(x.rank);
    }
    return ranks;
  };

  // A browser that missed an update (too far behind) gets the whole view once it has caught up.
  const behind = new WeakSet<WebSocket>();
  const send = (ws: WebSocket, data: () => string) => {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount >= MAX_BUFFERED) return void behind.add(ws);
    if (behind.delete(ws)) return ws.send(JSON.stringify({ type: 'view', view: liveView(src) }));
    ws.send(data());
  };

  // What the updates cost the coordinator's thread: how many, and the time building and sending them.
  let updates = 0;
  let updateMs = 0;
  const update = () => {
    if (!clients.size) return;
    const t = performance.now();
    const m = src.machine;
    const now = src.now();
    const report = src.report();
    const facts = runFacts(m, src.t0, now);
    const sorted = [...m.steps.final.entries()].sort((a, b) => a[0] - b[0]);
    let from = 0;
    while (from < sorted.length && from < sent.length && sorted[from]![1] === sent[from]) from++;
    const g = heatGrouping(m.cfg.workers, sorted.length);
    const grouping = `${g.rankGroup}/${g.stepGroup}`;
    const { kind: _k, version: _v, title: _t, ...parts } = buildRunView(report, { ...facts, steps: sorted }, '', grouping === sentGrouping ? Math.floor(from / g.stepGroup) : 0);
    sent = sorted.map(([, s]) => s);
    sentGrouping = grouping;
    const live = liveStatus(m.statusSnapshot(now), m.trainingStart, now);
    for (const r of newlyGone()) if (r < live.rankState.length) live.rankState[r] = live.states.indexOf('dead');
    const msg = { type: 'update', ...parts, live };
    const data = JSON.stringify(msg);
    for (const ws of clients) send(ws, () => data);
    updates++;
    updateMs += performance.now() - t;
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { Allow: 'GET' }).end();
    if (path !== '/' && path !== '/index.html') return void res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: the dashboard is at /\n');
    renderHtml(liveView(src)).then(
      (html) => res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(req.method === 'HEAD' ? undefined : html),
      (e: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${String(e)}\n`),
    );
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/ws') return void socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => {
      clients.add(ws);
      ws.on('close', () => {
        clients.delete(ws);
        if (!clients.size && timer) (clearInterval(timer), (timer = null));
      });
      ws.on('error', () => ws.terminate());
      // A new browser gets the whole view; the others' next update carries what changed since theirs.
      newlyGone();
      send(ws, () => JSON.stringify({ type: 'view', view: liveView(src) }));
      timer ??= setInterval(update, UPDATE_MS);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new RingswarmUsageError(`--ui-port ${port}: ${UI_HOST}:${port} is already in use`));
      else if (e.code === 'EACCES') reject(new RingswarmUsageError(`--ui-port ${port}: not permitted to listen on ${UI_HOST}:${port}`));
      else reject(e);
    });
    server.listen({ host: UI_HOST, port, exclusive: true }, () => resolve());
  });
  const bound = (server.address() as { port: number }).port;
  return {
    url: `http://${UI_HOST}:${bound}/`,
    clients: () => clients.size,
    async close(final) {
      if (timer) clearInterval(timer);
      timer = null;
      if (updates) src.log?.(`dashboard: ${updates} updates, ${Math.round(updateMs)} ms of the coordinator's time (${(updateMs / updates).toFixed(1)} ms each)`);
      if (final && clients.size) {
        const data = JSON.stringify({ type: 'view', view: liveView(src, final) });
        await Promise.all([...clients].map((ws) => new Promise<void>((r) => (ws.readyState === ws.OPEN ? ws.send(data, () => r()) : r()))));
      }
      for (const ws of clients) ws.close(1001, 'the run has ended');
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        // A browser that does not answer the close handshake must not hold the run open.
        setTimeout(() => {
          for (const ws of clients) ws.terminate();
        }, 500).unref();
      });
      wss.close();
    },
  };
}
