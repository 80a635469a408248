// Events per second of the virtual clock (prints figures; asserts nothing).
//
//   node dist/scripts/bench-virtual-clock.js [--events N]
//
// 1. sync timers:   N timers set at once (a large heap) whose callbacks do no async work.
//    chained:       one timer at a time, each setting the next (a small heap).
// 2. sleep actors:  64 async loops of `await clock.sleep(x)`: one timer and one resumed chain per event.
// 3. sim frames:    frames sent round a 16-endpoint ring on a SimNetwork (two timers per frame).
// 4. floor:         bare `await new Promise(r => setImmediate(r))` round trips, what the clock pays
//                   per event so that every promise continuation runs before the next timer.
import { SimNetwork } from '../src/runtime/sim-network.js';
import { VirtualClock } from '../src/runtime/virtual-clock.js';

const arg = process.argv.indexOf('--events');
const N = arg > 0 ? Number(process.argv[arg + 1]) : 200_000;

async function timed(label: string, events: () => Promise<number>): Promise<void> {
  const t0 = performance.now();
  const n = await events();
  const s = (performance.now() - t0) / 1000;
  console.log(`${label.padEnd(14)} ${String(n).padStart(9)} events  ${(s * 1000).toFixed(0).padStart(6)} ms  ${Math.round(n / s).toLocaleString('en-US').padStart(11)} events/s`);
}

await timed('sync timers', async () => {
  const c = new VirtualClock();
  for (let i = 0; i < N; i++) c.setTimer(i % 1000, () => {});
  return (await c.run()).events;
});

await timed('chained', async () => {
  const c = new VirtualClock();
  let left = N;
  const tick = () => {
    if (--left > 0) c.setTimer(1, tick);
  };
  c.setTimer(1, tick);
  return (await c.run()).events;
});

await timed('sleep actors', async () => {
  const c = new VirtualClock();
  const per = Math.ceil(N / 64);
  for (let a = 0; a < 64; a++) {
    void (async () => {
      for (let i = 0; i < per; i++) await c.sleep((a % 7) + 1);
    })();
  }
  return (await c.run()).events;
});

await timed('sim frames', async () => {
  const c = new VirtualClock();
  const net = new SimNetwork(c, { latencyUs: 50, bandwidth: 1e9, seed: 1 });
  const size = 16;
  const eps = Array.from({ length: size }, (_, i) => net.endpoint(`w${i}`));
  const url = (r: number) => ({ rank: (r + size) % size, dataUrl: eps[(r + size) % size].dataUrl });
  const frames = Math.ceil(N / 2);
  let left = frames;
  const frame = new Uint8Array(4096);
  eps.forEach((e, r) => e.setEvents({ onFrame: () => left-- > 0 && e.send((r + 1) % size, frame), onLinkLost: () => {} }));
  void Promise.all(eps.map((e, r) => e.ring(0, r, url(r - 1), url(r + 1), 1000))).then(() => eps.forEach((e, r) => e.send((r + 1) % size, frame)));
  return (await c.run()).events;
});

await timed('floor', async () => {
  for (let i = 0; i < N; i++) await new Promise((r) => setImmediate(r));
  return N;
});
