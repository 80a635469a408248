// Test hosts on one machine: network namespaces, one per host, each with a veth pair into a hub
// namespace whose bridge joins them (every host reaches every other, and nothing else: no end of
// any link is in the machine's own namespace, so no traffic leaves these namespaces). Addresses
// in 10.77.0.0/24, loopback up in each. `shape` puts a kernel TBF on one host's egress. `teardown`
// kills whatever still runs in the namespaces (only processes started in them: ours) and removes
// them, which removes their veths too; it is idempotent, and runs at exit as well. Needs root and
// iproute2 (`ip`, `tc`); `netnsSupport()` says whether this machine can, and why not.
//
// As a command: `node dist/scripts/ci/netns.js probe | up N | down PREFIX | clean` (clean removes
// the namespaces of earlier runs whose process is gone).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

/** Every namespace made here is named `rsnet<pid>x<hex>-...`: whose it is, and unique. */
const NAME = /^rsnet(\d+)x[0-9a-f]+-/;
const SUBNET = '10.77.0';
const FIRST_HOST = 10;

export interface TestHost {
  index: number;
  /** The namespace. */
  ns: string;
  /** Its hostname, for commands started with `exec` (a UTS namespace of their own). */
  hostname: string;
  /** Its IPv4 address. */
  addr: string;
  /** Its end of the link (in `ns`); the other end is `hubDev` in the hub. */
  dev: string;
  hubDev: string;
}

export interface TbfShape {
  /** tc rate, e.g. '100mbit'. */
  rate: string;
  /** tc burst, e.g. '64kb' (at least rate / HZ). */
  burst?: string;
  /** tc latency: how long a packet may wait in the queue, e.g. '100ms'. */
  latency?: string;
}

export interface TestNet {
  prefix: string;
  hub: string;
  hosts: TestHost[];
  /** argv to run `argv` on `host` (same pid: `ip netns exec` and `unshare` exec, not fork), with its own hostname. */
  exec(host: TestHost, argv: string[]): [string, string[]];
  /** A TBF qdisc on the host's egress (its veth end); `both` also on what the hub sends it. */
  shape(host: TestHost, s: TbfShape, both?: boolean): void;
  /** Set a sysctl of the host's network namespace (net.*: each namespace has its own), e.g. net.ipv4.tcp_wmem. */
  sysctl(host: TestHost, key: string, value: string): void;
  /** Bytes the host's link sent and received so far. */
  counters(host: TestHost): { tx: number; rx: number };
  /** Kill what runs in the namespaces and remove them. Idempotent. */
  teardown(): void;
}

// Generous: on a loaded machine a namespace's creation or removal takes seconds (seen here: 5 s
// for an add and a del at a load of 180), and a slow answer is not a 'no'.
const IP_TIMEOUT_MS = 120_000;

function run(cmd: string, args: string[], input?: string): { ok: boolean; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: IP_TIMEOUT_MS, ...(input !== undefined ? { input } : {}) });
  const err = r.error ? r.error.message : r.stderr.trim();
  return { ok: r.status === 0, out: r.stdout ?? '', err };
}

function must(cmd: string, args: string[], input?: string): string {
  const r = run(cmd, args, input);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')}${input ? ` <<<${JSON.stringify(input)}` : ''}: ${r.err || 'failed'}`);
  return r.out;
}

/** Several ip commands in one process (`ip [-n NS] -batch -`): far fewer processes to start. */
function ipBatch(lines: string[], ns?: string): void {
  must('ip', [...(ns ? ['-n', ns] : []), '-batch', '-'], lines.join('\n') + '\n');
}

export function listNamespaces(): string[] {
  const r = run('ip', ['netns', 'list']);
  return r.ok ? r.out.split('\n').map((l) => l.split(' ')[0]).filter(Boolean) : [];
}

/** Kill every process in these namespaces (SIGKILL, by pid: only what was started in them) and remove them; no error for one already gone. */
function removeNamespaces(names: string[]): void {
  const present = new Set(listNamespaces());
  const gone = names.filter((ns) => present.has(ns));
  for (let i = 0; i < 3; i++) {
    const pids = gone.flatMap((ns) => run('ip', ['netns', 'pids', ns]).out.split('\n').map(Number)).filter((p) => p > 0 && p !== process.pid);
    if (pids.length === 0) break;
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    spawnSync('sleep', ['0.2']);
  }
  // Each on its own, so that one that fails does not keep the others.
  for (const ns of gone) run('ip', ['netns', 'del', ns]);
}

/** Whether this machine can make test hosts: root, iproute2, `ip netns add`, veth, a bridge and TBF. */
export function netnsSupport(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces are Linux only (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'making network namespaces needs root' };
  if (!run('ip', ['-V']).ok) return { ok: false, reason: '`ip` (iproute2) is not installed' };
  if (!run('tc', ['-V']).ok) return { ok: false, reason: '`tc` (iproute2) is not installed' };
  const ns = `rsnet${process.pid}x${randomBytes(3).toString('hex')}-probe`;
  try {
    const add = run('ip', ['netns', 'add', ns]);
    if (!add.ok) return { ok: false, reason: `ip netns add fails here: ${add.err}` };
    const steps: [string, string[]][] = [
      ['veth', ['-n', ns, 'link', 'add', 'name', 'a', 'type', 'veth', 'peer', 'name', 'b']],
      ['bridge', ['-n', ns, 'link', 'add', 'name', 'br', 'type', 'bridge']],
    ];
    for (const [what, args] of steps) {
      const r = run('ip', args);
      if (!r.ok) return { ok: false, reason: `cannot make a ${what} here: ${r.err}` };
    }
    const tbf = run('tc', ['-n', ns, 'qdisc', 'add', 'dev', 'a', 'root', 'tbf', 'rate', '10mbit', 'burst', '32kb', 'latency', '50ms']);
    if (!tbf.ok) return { ok: false, reason: `this kernel has no TBF qdisc: ${tbf.err}` };
    const uts = run('ip', ['netns', 'exec', ns, 'unshare', '--uts', 'true']);
    if (!uts.ok) return { ok: false, reason: `unshare --uts fails here: ${uts.err}` };
    return { ok: true };
  } finally {
    removeNamespaces([ns]);
  }
}

const live = new Set<TestNet>();
let exitHook = false;

/**
 * N test hosts: namespaces `<prefix>-h0..`, each with `eth0` at 10.77.0.(10 + i)/24, its peer
 * `h<i>` on bridge `br0` in `<prefix>-hub`. On any failure what was made is removed before the
 * error is thrown.
 */
export function createTestNet(n: number): TestNet {
  if (n < 1 || n > 200) throw new Error(`test hosts: 1 to 200, not ${n}`);
  const prefix = `rsnet${process.pid}x${randomBytes(3).toString('hex')}`;
  const hub = `${prefix}-hub`;
  const hosts: TestHost[] = [];
  let torn = false;
  const net: TestNet = {
    prefix,
    hub,
    hosts,
    exec: (host, argv) => ['ip', ['netns', 'exec', host.ns, 'unshare', '--uts', '/bin/sh', '-c', 'hostname "$0" && exec "$@"', host.hostname, ...argv]],
    shape(host, s, both = false) {
      const tbf = ['root', 'tbf', 'rate', s.rate, 'burst', s.burst ?? '64kb', 'latency', s.latency ?? '100ms'];
      must('tc', ['-n', host.ns, 'qdisc', 'replace', 'dev', host.dev, ...tbf]);
      if (both) must('tc', ['-n', hub, 'qdisc', 'replace', 'dev', host.hubDev, ...tbf]);
    },
    sysctl(host, key, value) {
      if (!/^net\.[\w.]+$/.test(key)) throw new Error(`not a network namespace sysctl: ${key}`);
      must('ip', ['netns', 'exec', host.ns, 'sysctl', '-q', '-w', `${key}=${value}`]);
    },
    counters(host) {
      const [link] = JSON.parse(must('ip', ['-n', host.ns, '-j', '-s', 'link', 'show', 'dev', host.dev])) as { stats64: { tx: { bytes: number }; rx: { bytes: number } } }[];
      return { tx: link.stats64.tx.bytes, rx: link.stats64.rx.bytes };
    },
    teardown() {
      if (torn) return;
      torn = true;
      // Everything of this prefix, whatever step a failed creation stopped at.
      removeNamespaces(listNamespaces().filter((ns) => ns.startsWith(`${prefix}-`)));
      live.delete(net);
    },
  };
  live.add(net);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const t of [...live]) t.teardown();
    });
  }
  for (let i = 0; i < n; i++) {
    hosts.push({ index: i, ns: `${prefix}-h${i}`, hostname: `${prefix}-h${i}`, addr: `${SUBNET}.${FIRST_HOST + i}`, dev: 'eth0', hubDev: `h${i}` });
  }
  try {
    // The namespaces, and each veth pair made with both ends straight in their namespaces: never
    // a moment in the machine's own.
    ipBatch([
      `netns add ${hub}`,
      ...hosts.map((h) => `netns add ${h.ns}`),
      ...hosts.map((h) => `link add name ${h.dev} netns ${h.ns} type veth peer name ${h.hubDev} netns ${hub}`),
    ]);
    ipBatch(['link set lo up', 'link add name br0 type bridge', 'link set br0 up', ...hosts.flatMap((h) => [`link set ${h.hubDev} master br0`, `link set ${h.hubDev} up`])], hub);
    for (const h of hosts) ipBatch(['link set lo up', `addr add ${h.addr}/24 dev ${h.dev}`, `link set ${h.dev} up`], h.ns);
  } catch (e) {
    net.teardown();
    throw e;
  }
  return net;
}

/** Remove the namespaces of earlier runs whose process is gone (a run killed before its teardown). */
export function removeStale(): string[] {
  const gone: string[] = [];
  for (const ns of listNamespaces()) {
    const m = NAME.exec(ns);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = pid === process.pid;
    if (!alive) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch {
        alive = false;
      }
    }
    if (alive) continue;
    gone.push(ns);
  }
  removeNamespaces(gone);
  return gone;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [cmd, arg] = process.argv.slice(2);
  if (cmd === 'probe') {
    const s = netnsSupport();
    console.log(s.ok ? 'ok: this machine can make test hosts' : `no: ${s.reason}`);
    process.exitCode = s.ok ? 0 : 1;
  } else if (cmd === 'up') {
    const net = createTestNet(Number(arg ?? 2));
    live.delete(net); // kept until `down`
    for (const h of net.hosts) console.log(`${h.ns} ${h.addr}`);
    console.log(`down with: node ${process.argv[1]} down ${net.prefix}`);
  } else if (cmd === 'down' && arg) {
    removeNamespaces(listNamespaces().filter((x) => x.startsWith(`${arg}-`)));
  } else if (cmd === 'clean') {
    for (const ns of removeStale()) console.log(`removed ${ns}`);
  } else {
    console.error('usage: netns.js probe | up N | down PREFIX | clean');
    process.exitCode = 2;
  }
}
