// The live dashboard's server without worker processes: a coordinator machine that has just begun
// (no worker joined), served on 127.0.0.1. The page, the WebSocket's first view and updates, nothing
// built while no browser is connected, the final view at close, the port closed after it, and a
// port in use refused with the flag's name.
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { runConfig } from '../../../src/api/options.js';
import { RingswarmUsageError } from '../../../src/api/errors.js';
import { CoordinatorMachine } from '../../../src/coordinator/machine.js';
import { buildReport } from '../../../src/coordinator/report.js';
import { algoChooser, fabricModel, jobSpec } from '../../../src/coordinator/run.js';
import { serveDashboard, UPDATE_MS, type Dashboard } from '../../../src/coordinator/html/live.js';

let open: Dashboard[] = [];
afterEach(async () => {
  await Promise.all(open.map((d) => d.close()));
  open = [];
});

async function dashboard(port = 0) {
  const cfg = await runConfig({ workers: 4, cardsPerWorker: 1, size: '4KiB', steps: 5, uiPort: port });
  const fabric = fabricModel(cfg.link);
  const algoFor = algoChooser(cfg, fabric);
  const machine = new CoordinatorMachine(cfg, jobSpec(cfg), algoFor, 0);
  machine.begin(0);
  let reports = 0;
  const report = () => (reports++, buildReport(machine, fabric, algoFor, 0, { now: 0, controlUrl: '', rejectedConnections: 0, coordinatorRssMB: 0, coordinatorPssMB: null, coordinatorCpuMs: 0 }));
  const d = await serveDashboard({ machine, t0: 0, now: () => 0, report }, cfg.uiPort!);
  open.push(d);
  return { d, reports: () => reports, report };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function messages(url: string): { ws: WebSocket; got: { type: string; view?: { live: unknown; summary: { ok: boolean } } }[]; closed: Promise<number> } {
  const ws = new WebSocket(url.replace('http', 'ws') + 'ws');
  const got: { type: string }[] = [];
  ws.on('message', (d) => got.push(JSON.parse(String(d))));
  return { ws, got, closed: new Promise((r) => ws.on('close', (code) => r(code))) };
}

describe('the live dashboard', () => {
  it('serves the page, then a view and updates over its WebSocket, and nothing while no browser is connected', async () => {
    const { d, reports } = await dashboard();
    expect(d.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(d.url);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toMatch(/<script type="application\/json" id="view">\{"kind":"run"/);
    expect((await fetch(d.url + 'nope')).status).toBe(404);
    const before = reports();
    await sleep(3 * UPDATE_MS);
    expect(reports()).toBe(before);
    const c = messages(d.url);
    await new Promise((r) => c.ws.on('open', r));
    await sleep(3 * UPDATE_MS);
    expect(d.clients()).toBe(1);
    expect(c.got[0]).toMatchObject({ type: 'view', view: { kind: 'run', live: { phase: 'joining', states: expect.arrayContaining(['dead', 'training']) } } });
    expect(c.got.slice(1).length).toBeGreaterThan(0);
    expect(c.got.slice(1).every((m) => m.type === 'update')).toBe(true);
    c.ws.close();
    await c.closed;
    await sleep(UPDATE_MS);
    const after = reports();
    await sleep(3 * UPDATE_MS);
    expect(reports()).toBe(after);
  });

  it('sends the final view at close, closes the connections and the port', async () => {
    const { d, report } = await dashboard();
    const c = messages(d.url);
    await new Promise((r) => c.ws.on('open', r));
    const final = { ...report(), ok: true };
    await d.close(final);
    open = [];
    expect(await c.closed).toBe(1001);
    expect(c.got.at(-1)).toMatchObject({ type: 'view', view: { summary: { ok: true } } });
    await expect(fetch(d.url)).rejects.toThrow();
  });

  it('refuses a port in use, naming the flag', async () => {
    const { d } = await dashboard();
    const port = Number(new URL(d.url).port);
    await expect(dashboard(port)).rejects.toThrow(RingswarmUsageError);
    await expect(dashboard(port)).rejects.toThrow(`--ui-port ${port}: 127.0.0.1:${port} is already in use`);
  });

  it('is for run only, and not on the control port', async () => {
    await expect(runConfig({ uiPort: 0 }, 'sim')).rejects.toThrow('--ui-port is for run');
    await expect(runConfig({ uiPort: 7000, port: 7000 })).rejects.toThrow('--ui-port 7000 is the control --port too');
    await expect(runConfig({ uiPort: 70000 })).rejects.toThrow('--ui-port 70000');
    await expect(runConfig({ html: '' })).rejects.toThrow('--html');
  });
});
