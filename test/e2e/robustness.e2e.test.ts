// Found by trying to break it (issue 9): bad checkpoint folders, full disks, slow and hostile
// connections, sizes that cannot fit, signals and a busy port. Real processes, few and small.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Server } from 'node:net';
import { freemem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { checkpointDisk } from '../../src/runtime/checkpoint-disk.js';
import { childrenOf, isAlive, killLeftovers, runCli, startCli, waitUntil } from './helpers.js';

afterEach(() => killLeftovers());

function report(stdout: string) {
  return JSON.parse(stdout.slice(stdout.indexOf('{')));
}

async function occupiedPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as AddressInfo).port, server };
}

describe('checkpoint folder', () => {
  it('an unwritable --checkpoint-dir fails at once, one line, status 2, before any worker starts', async () => {
    const r = await runCli(['run', '-w', '4', '-g', '2', '-s', '64KiB', '--steps', '20', '--checkpoint-dir', '/dev/null/ck']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: --checkpoint-dir \/dev\/null\/ck: cannot create \/dev\/null\/ck: ENOTDIR[^\n]*\n$/);
    expect(r.stdout).toBe(''); // not even the banner: nothing was started
  });

  const mnt = mkdtempSync(join(tmpdir(), 'rs-full-'));
  let mounted = false;
  try {
    // Room for three of the six files a 2-worker run keeps (2 per owner and one being written).
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt], { stdio: 'ignore' });
    mounted = true;
  } catch {
    // mounting is not permitted here
  }
  afterAll(() => {
    if (mounted) execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });

  it.skipIf(!mounted)('a disk that fills mid-run: one warning per worker, memory checkpoints from then on, the run ends exact', async () => {
    const r = await runCli(['run', '-w', '2', '-g', '1', '-s', '64KiB', '--steps', '8', '--checkpoint-every', '1', '--checkpoint-dir', mnt, '--json', '-']);
    expect(r.code, r.stderr).toBe(0);
    const rep = report(r.stdout);
    expect(rep).toMatchObject({ ok: true, wrong: 0, stepsCompleted: 8 });
    const warnings = r.stderr.split('\n').filter((l) => /warning/.test(l));
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.length).toBeLessThanOrEqual(2);
    for (const w of warnings) expect(w).toMatch(/^\[w[01]\] warning: checkpoint step \d+ of cards from \d: could not write .*ENOSPC.*stay in memory only/);
    expect(new Set(warnings.map((w) => w.slice(0, 4))).size).toBe(warnings.length); // once per worker
    expect(r.stderr).not.toMatch(/^\s+at /m); // no stack traces
    // Nothing torn under a final name, no temporaries left.
    const files = readdirSync(mnt);
    expect(files.filter((f) => f.includes('.tmp'))).toEqual([]);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const [, owner, step] = /^cards-(\d+)-step-(\d+)\.ckpt$/.exec(f)!;
      expect((await checkpointDisk.read(mnt, Number(owner), Number(step))).length).toBe(1);
    }
  });
});

describe('attribution (the issue 9 replay, scaled down)', () => {
  it('spoilt disk checkpoints and a kill of three neighbours: every kill detected, each spoilt file its own fault at its rank, no restore claimed from a file that did not read back', async () => {
    // 6 workers, checkpoints every 10 steps, on disk too; rank 1 killed at step 5, ranks 2, 3 and 4
    // at step 16. Before that, one step-10 file gets a byte flipped and another is cut in half: the
    // killed neighbours' copies went with them, so ranks 2 and 3 must restore from those files.
    const ck = mkdtempSync(join(tmpdir(), 'rs-attr-'));
    try {
      const job = ['-w', '6', '-g', '1', '-s', '16KiB', '--steps', '24', '--checkpoint-every', '10', '--algo', 'ring'];
      const kills = [1, 2, 3, 4].flatMap((r) => ['--inject', `kill:rank=${r}:step=${r === 1 ? 5 : 16}`]);
      const run = startCli(['run', ...job, '--compute-ms', '250', '--checkpoint-dir', ck, ...kills, '--json', '-']);
      // Written whole or not at all (a temporary, renamed), at the start of step 10, long before step 16.
      const file = (card: number) => join(ck, `cards-${card}-step-${String(10).padStart(9, '0')}.ckpt`);
      expect(await waitUntil(() => existsSync(file(2)) && existsSync(file(3)), 60_000, 10)).toBe(true);
      const flipped = readFileSync(file(2));
      flipped[flipped.length >> 1] ^= 0x5a;
      writeFileSync(file(2), flipped);
      truncateSync(file(3), statSync(file(3)).size >> 1);
      const { code } = await run.exited;
      expect(code, run.stderr()).toBe(0);
      const rep = report(run.stdout());
      const clean = report((await runCli(['sim', ...job, '--json', '-'])).stdout);
      expect(rep).toMatchObject({ ok: true, wrong: 0, stepsCompleted: 24, stateDigest: clean.stateDigest });
      type F = { kind: string; rank?: number; link?: number[]; injected: boolean; detectedBy: string | null; located: string | null; action: string | null; restoredFrom: string | null };
      const faults: F[] = rep.faults;
      // A killed worker is never "not detected", and each entry names only its own rank.
      expect(faults.filter((f) => f.kind === 'kill').map((f) => [f.rank, f.detectedBy, f.located, f.action])).toEqual([1, 2, 3, 4].map((r) => [r, 'exit', `rank ${r}`, `restart rank ${r}`]));
      // A spoilt file is a fault of that rank's checkpoint, from outside: not a checksum fault on a link, not an injected fault's.
      expect(faults.filter((f) => f.link)).toEqual([]);
      const spoilt = faults.filter((f) => f.kind === 'checkpoint');
      expect(spoilt.map((f) => [f.rank, f.injected, f.detectedBy, f.located, f.action]).sort()).toEqual([
        [2, false, 'checksum', 'rank 2', 'rollback'],
        [3, false, 'checksum', 'rank 3', 'rollback'],
      ]);
      // The disk restore of ranks 2 and 3 failed: their kills were restored from wherever the run really resumed.
      for (const f of faults.filter((x) => x.kind === 'kill' && (x.rank === 2 || x.rank === 3))) expect(f.restoredFrom).not.toBe('disk');
      expect(faults.filter((f) => f.kind !== 'kill' && f.kind !== 'checkpoint')).toEqual([]);
      // Refusals by workers (a replacement asking a peer for a copy it does not hold) are theirs: only the coordinator's count.
      expect(rep.rejectedConnections).toBe(0);
    } finally {
      rmSync(ck, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('sizes that cannot fit', () => {
  it('a 4 GiB card is refused with what it would cost, status 2', async () => {
    const r = await runCli(['run', '--size', '4GiB']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: \d+ workers x \d+ cards x --size 4 GiB .*need at least [\d.]+ [GT]iB .*: use a smaller --size, fewer --cards-per-worker or fewer --workers\n$/);
    expect(r.stdout).toBe('');
  });

  it('a size that fits but takes more than half the memory is warned about (here stopped by a busy port before anything starts)', async () => {
    const { port, server } = await occupiedPort();
    try {
      // One worker, no checkpoints: about 4 buffers of the card size.
      const mib = Math.floor((freemem() * 0.7) / 4 / 2 ** 20);
      const r = await runCli(['run', '-w', '1', '-g', '1', '-s', `${mib}MiB`, '--checkpoint-every', '0', '--port', String(port)]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^warning: 1 worker x 1 card x --size [\d.]+ GiB need at least .*more than half of the .* available\n/);
      expect(r.stderr).toMatch(new RegExp(`error: --port ${port}: 127\\.0\\.0\\.1:${port} is already in use`));
    } finally {
      server.close();
    }
  });
});

describe('signals and ports', () => {
  it('a second coordinator on the same port exits 2 naming the port; SIGTERM ends the first with 143', async () => {
    const { port, server } = await occupiedPort();
    server.close(); // a free port to pin the first coordinator to
    await new Promise((r) => server.once('close', r));
    const first = startCli(['run', '-w', '1', '--spawn', '0', '--port', String(port), '--json', '-']);
    await first.waitFor(/coordinator listening on/);
    const second = await runCli(['run', '-w', '1', '--spawn', '0', '--port', String(port)]);
    expect(second.code).toBe(2);
    expect(second.stderr).toBe(`error: --port ${port}: 127.0.0.1:${port} is already in use (another coordinator?)\n`);
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(143);
    expect(report(first.stdout())).toMatchObject({ ok: false, interrupted: true });
  });

  it('SIGTERM stops a run with workers: partial report, status 143, no orphans', async () => {
    const run = startCli(['run', '-w', '2', '-g', '1', '-s', '4KiB', '--steps', '100000', '--compute-ms', '2', '--json', '-']);
    await run.waitFor(/step \d+\/100000/);
    const workers = childrenOf(run.child.pid!);
    expect(workers.length).toBeGreaterThanOrEqual(2);
    run.child.kill('SIGTERM');
    expect((await run.exited).code).toBe(143);
    const rep = report(run.stdout());
    expect(rep).toMatchObject({ ok: false, interrupted: true });
    expect(rep.stepsCompleted).toBeGreaterThan(0);
    expect(await waitUntil(() => workers.filter(isAlive).length === 0, 5_000)).toBe(true);
  });
});

describe('slow and hostile connections to the coordinator', () => {
  it('an upgrade sent one byte a second and a silent WebSocket are cut off; 30 refusals log a few lines and count in the report', async () => {
    const run = startCli(['run', '-w', '2', '-g', '1', '-s', '4KiB', '--steps', '100000', '--compute-ms', '5', '--json', '-']);
    const [, url] = await run.waitFor(/coordinator listening on (ws:\/\/\S+)/);
    await run.waitFor(/step \d+\/100000/);
    const { port } = new URL(url);
    // The slow loris: a byte a second of an upgrade request that would take a minute.
    const slow = createConnection(Number(port), '127.0.0.1');
    slow.on('error', () => {});
    const request = `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
    let sent = 0;
    const drip = setInterval(() => !slow.destroyed && sent < request.length && slow.write(request[sent++]), 1000);
    const slowClosed = new Promise<void>((r) => slow.once('close', () => r()));
    // Upgraded, then silent: no hello.
    const silent = new WebSocket(url);
    silent.on('error', () => {});
    const silentClosed = new Promise<number>((r) => silent.once('close', (code) => r(code)));
    // And 30 that say something wrong.
    const hello = { type: 'hello', version: 1, token: 'not-the-token', workerId: 'rogue', pid: 1, dataUrl: 'ws://127.0.0.1:1', spawned: false };
    const codes = await Promise.all(
      Array.from({ length: 30 }, (_, k) =>
        new Promise<number>((resolve) => {
          const ws = new WebSocket(url);
          ws.on('open', () => ws.send(k % 3 === 0 ? '{not json' : JSON.stringify(hello)));
          ws.on('close', (code) => resolve(code));
          ws.on('error', () => {});
        }),
      ),
    );
    expect(new Set(codes)).toEqual(new Set([4001, 4003]));
    expect(await silentClosed).toBe(4003);
    await slowClosed;
    clearInterval(drip);
    expect(sent).toBeLessThan(request.length); // cut off long before it was through
    run.child.kill('SIGINT');
    expect((await run.exited).code).toBe(130);
    const rep = report(run.stdout());
    expect(rep).toMatchObject({ interrupted: true, wrong: 0 });
    expect(rep.rejectedConnections).toBe(32);
    const refusedLines = run.stderr().split('\n').filter((l) => /refused/.test(l));
    expect(refusedLines.length).toBeGreaterThanOrEqual(5);
    expect(refusedLines.length).toBeLessThanOrEqual(7);
  }, 60_000);
});
