// Several hosts on one machine: the test makes its own test hosts (network namespaces on a bridge,
// scripts/ci/netns.ts), runs the coordinator on host 0 and one worker on each of hosts 1..4, each
// in a UTS namespace with its host's name, and shapes host 2's egress with the kernel's TBF. The
// job ends exact (the closed-form digest), every worker is reached at its own host's address (its
// ring neighbour's connection goes to that address, on the port it listens on), the links carried
// the job's bytes, and the straggler detector names the shaped host's link. Skipped where this
// machine cannot make network namespaces, except under .ci/run (RINGSWARM_REQUIRE_ENGINES=1).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestNet, listNamespaces, netnsSupport, removeStale, type TestHost, type TestNet } from '../../scripts/ci/netns.js';
import { expectedDigest } from '../../scripts/stress-common.js';
import { CLI, isAlive } from './helpers.js';

const required = process.env.RINGSWARM_REQUIRE_ENGINES === '1';
const support = netnsSupport();
const skip = !support.ok && !required;
const why = support.ok ? '' : ` (no test hosts here: ${support.reason})`;

const W = 4;
const CARDS = 2;
const BYTES = 1 << 20;
const STEPS = 20;
const SHAPED_RANK = 1; // on host 2
const SHAPE = ['-w', String(W), '-g', String(CARDS), '-s', String(BYTES), '--steps', String(STEPS), '--algo', 'ring'];

interface Proc {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  closed: Promise<number | null>;
}

let net: TestNet | null = null;
const procs: Proc[] = [];

/** `argv` on `host`, its output kept. The pid is node's own (ip netns exec, unshare and sh exec). */
function startOn(host: TestHost, argv: string[]): Proc {
  const [cmd, args] = net!.exec(host, argv);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const p = { child, out: () => out, err: () => err, closed };
  procs.push(p);
  return p;
}

async function waitForText(p: Proc, re: RegExp, ms: number): Promise<RegExpMatchArray> {
  const until = Date.now() + ms;
  for (;;) {
    const m = (p.out() + p.err()).match(re);
    if (m) return m;
    if (Date.now() > until || p.child.exitCode !== null) throw new Error(`no ${re} from the coordinator:\n${p.out()}\n${p.err()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** TCP sockets of the network namespace `pid` is in: [state, local, remote], IPv4 as 'a.b.c.d:port'. */
function tcpOf(pid: number): [string, string, string][] {
  const ip = (hex: string) => {
    const [a, port] = hex.split(':');
    const b = Buffer.from(a, 'hex');
    return `${b[3]}.${b[2]}.${b[1]}.${b[0]}:${parseInt(port, 16)}`;
  };
  try {
    return readFileSync(`/proc/${pid}/net/tcp`, 'utf8')
      .split('\n')
      .slice(1)
      .filter((l) => l.trim())
      .map((l) => l.trim().split(/\s+/))
      .map((f) => [f[3] === '01' ? 'ESTAB' : f[3] === '0A' ? 'LISTEN' : f[3], ip(f[1]), ip(f[2])]);
  } catch {
    return [];
  }
}

/** What each host looks like now (for a failure's message): its addresses and listening sockets. */
function hostsNow(n: TestNet): string {
  const sh = (h: TestHost, argv: string[]) => spawnSync('ip', ['netns', 'exec', h.ns, ...argv], { encoding: 'utf8', timeout: 60_000 }).stdout ?? '';
  return n.hosts.map((h) => `${h.ns}:\n${sh(h, ['ip', '-br', 'addr'])}${sh(h, ['ss', '-Htlnp'])}`).join('');
}

afterAll(async () => {
  for (const p of procs) if (p.child.pid && isAlive(p.child.pid)) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.closed));
  const prefix = net?.prefix;
  net?.teardown();
  if (prefix) expect(listNamespaces().filter((ns) => ns.startsWith(prefix))).toEqual([]);
  for (const p of procs) expect(isAlive(p.child.pid!)).toBe(false);
}, 120_000);

describe('several hosts on one machine (network namespaces)', () => {
  it.skipIf(skip)(`coordinator on host 0, a worker on each of hosts 1-4, host 2's link shaped by TBF: exact, each worker at its own address, the shaped link named${why}`, async () => {
    expect(support, 'RINGSWARM_REQUIRE_ENGINES=1: this machine must make test hosts').toEqual({ ok: true });
    removeStale();
    net = createTestNet(1 + W);
    const [h0, ...workerHosts] = net.hosts;
    const hostOf = (rank: number) => workerHosts[rank];
    // TCP send buffers of 16 KiB on every host, so that a slow link holds its sender's writes (a
    // ring segment is 256 KiB here). With Linux's default (up to 4 MiB) the kernel takes most of
    // each segment at once, the sender's frames count as written almost at once, and the shaped
    // link shows mostly as waiting at its receiver, which the detector does not score: it was
    // named in only 2 of 6 such runs here.
    for (const h of net.hosts) net.sysctl(h, 'net.ipv4.tcp_wmem', '4096 16384 16384');
    // 100 Mbit/s out of host 2 (a 10 ms queue), against the others' unshaped veths: rank 1's
    // sends, and its ACKs of what rank 0 sends it, are the slow ones.
    net.shape(hostOf(SHAPED_RANK), { rate: '100mbit', burst: '64kb', latency: '10ms' });

    const coord = startOn(h0, [
      process.execPath, CLI, 'run', ...SHAPE, '--spawn', '0', '--host', '0.0.0.0', '--advertise', h0.addr, '--port', '0', '--token', 'T',
      '--ready-timeout-ms', '60000', '--on-failure', 'abort', '--json', '-',
      // No checkpoint copies: sent to the successor at every step, they share the shaped link, and
      // then nothing was named in 7 of 8 runs here (see the README).
      '--checkpoint-every', '0',
    ]);
    const url = (await waitForText(coord, /coordinator listening on (ws:\/\/\S+)/, 60_000))[1];
    expect(url).toMatch(new RegExp(`^ws://${h0.addr.replace(/\./g, '\\.')}:\\d+$`));
    const controlPort = Number(url.split(':').pop());
    // Only --advertise: a worker that advertises another address binds every interface.
    const workers = workerHosts.map((h, rank) =>
      startOn(h, [process.execPath, CLI, 'worker', '--url', url, '--token', 'T', '--rank', String(rank), '--world-size', String(W), '--advertise', h.addr]),
    );

    // While the job runs: every worker's namespace, as its sockets show it.
    const seen = new Map<number, Set<string>>(workers.map((_, r) => [r, new Set<string>()]));
    let running = true;
    const watching = (async () => {
      while (running) {
        workers.forEach((w, r) => w.child.pid && tcpOf(w.child.pid).forEach((s) => seen.get(r)!.add(s.join(' '))));
        await new Promise((res) => setTimeout(res, 100));
      }
    })();
    const code = await coord.closed;
    running = false;
    await watching;
    const exits = await Promise.all(workers.map((w) => w.closed));
    const logs = `coordinator:\n${coord.err()}\n${workers.map((w, r) => `worker ${r}:\n${w.err()}`).join('\n')}\nhosts now:\n${hostsNow(net)}\ncoordinator's sockets seen: ${JSON.stringify(tcpOf(coord.child.pid!))}`;
    expect(code, logs).toBe(0);
    expect(exits, logs).toEqual([0, 0, 0, 0]);

    const report = JSON.parse(coord.out());
    expect(report.ok).toBe(true);
    expect(report.controlUrl).toBe(url);
    expect(report.stateDigest).toBe(expectedDigest({ workers: W, cards: CARDS, bytesPerCard: BYTES, steps: STEPS, seed: 1 }));

    // processes[]: each worker on its own host (its UTS name), advertising its own host's address.
    expect(report.processes.map((p: { rank: number; pid: number; host: string; dataUrl: string; launcher: unknown }) => [p.rank, p.pid, p.host, new URL(p.dataUrl).hostname, p.launcher])).toEqual(
      workers.map((w, r) => [r, w.child.pid, hostOf(r).hostname, hostOf(r).addr, { kind: 'flag', rank: r }]),
    );

    // Each worker listened on its own host's address and was dialled there, on the port it
    // listened on, by a ring neighbour (the receiver dials its predecessor's data server): so
    // what it advertised was its own address. Each talked to the coordinator at host 0's.
    const sockets = (r: number) => [...seen.get(r)!].map((s) => s.split(' '));
    for (let r = 0; r < W; r++) {
      const listens = sockets(r).filter(([st]) => st === 'LISTEN').map(([, local]) => Number(local.split(':')[1]));
      const at = new Set(listens.map((port) => `${hostOf(r).addr}:${port}`));
      const dialers = [...Array(W).keys()].filter((q) => q !== r && sockets(q).some(([st, local, remote]) => st === 'ESTAB' && local.startsWith(`${hostOf(q).addr}:`) && at.has(remote)));
      expect(dialers.length, `nobody reached rank ${r} at ${[...at]}; sockets: ${JSON.stringify([...seen.entries()].map(([q, s]) => [q, [...s]]))}`).toBeGreaterThan(0);
      for (const q of dialers) expect([(r + 1) % W, (r + W - 1) % W]).toContain(q);
      expect(sockets(r).some(([st, , remote]) => st === 'ESTAB' && remote === `${h0.addr}:${controlPort}`), `rank ${r} -> coordinator ${url}`).toBe(true);
      // The job's bytes went over the host's link: at least one card's worth a step.
      expect(net.counters(hostOf(r)).tx).toBeGreaterThan(STEPS * BYTES);
    }

    // The shaped host is named: rank 1 as a node slow in communication (both its links: its ACKs
    // leave through the same TBF), or its link 1 -> 2; and the strongest straggler is one of
    // these (a rank elsewhere flagged at ~1.5x, as this shared machine sometimes does, is not).
    type S = { kind: string; rank?: number; link?: number[]; score: number };
    const onShaped = (s: S) => (s.kind === 'node' ? s.rank === SHAPED_RANK : s.link!.includes(SHAPED_RANK));
    const stragglers: S[] = report.stragglers;
    expect(stragglers.filter((s) => onShaped(s) && (s.kind === 'node' || s.link![0] === SHAPED_RANK)).length, JSON.stringify(stragglers)).toBeGreaterThan(0);
    const top = [...stragglers].sort((a, b) => b.score - a.score)[0];
    expect(onShaped(top), JSON.stringify(stragglers)).toBe(true);
  }, 180_000);
});
