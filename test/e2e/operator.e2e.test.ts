// `ringswarm status` and `ringswarm inject` against a real running job: the status names every
// worker process, a stuck job says whom it waits for, and a fault injected from outside is found,
// located and healed like one from a scenario, with its entry in the report marked live.
import { existsSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobStatus } from '../../src/protocol/operator.js';
import { fetchStatus } from '../../dist/src/runtime/operator-client.js';
import { killLeftovers, runCli, startCli } from './helpers.js';

afterEach(killLeftovers);

const access = (url: string, token = 'tok') => ['--url', url, '--token', token];

describe('status and inject on a running job', () => {
  it('status lists every rank; inject kills one now; the report has the live fault, found and healed', async () => {
    const coord = startCli(['run', '-w', '4', '-g', '2', '-s', '16KiB', '--steps', '5000', '--compute-ms', '20', '--port', '0', '--token', 'tok', '--json', '-', '--worker-nice', '7']);
    const url = (await coord.waitFor(/coordinator listening on (ws:\/\/\S+)/))[1];
    await coord.waitFor(/live status: ringswarm status --url ws:\/\/\S+ --token tok/);
    await coord.waitFor(/workers ready/);

    const st = await runCli(['status', ...access(url), '--json']);
    expect(st.code, st.stderr).toBe(0);
    const status = JSON.parse(st.stdout) as JobStatus;
    expect(status.job).toMatchObject({ workers: 4, cardsPerWorker: 2, steps: 5000 });
    expect(status.ranks.map((r) => r.rank)).toEqual([0, 1, 2, 3]);
    for (const r of status.ranks) {
      expect(r.pid).toBeGreaterThan(0);
      // --worker-nice: the process and (Linux autogroup) its scheduling group.
      expect(Number(readFileSync(`/proc/${r.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16])).toBe(7);
      if (existsSync(`/proc/${r.pid}/autogroup`)) expect(readFileSync(`/proc/${r.pid}/autogroup`, 'utf8')).toMatch(/ nice 7$/m);
      expect(['ringing', 'training', 'done']).toContain(r.state);
      expect(r.heartbeatAgeMs).toBeGreaterThanOrEqual(0);
    }
    const table = await runCli(['status', ...access(url)]);
    expect(table.stdout).toMatch(/^job: 4 workers x 2 cards/);
    expect(table.stdout).toMatch(/rank\s+pid\s+host\s+state\s+op\s+phase\s+chunk\s+heartbeat/);

    const wrongToken = await runCli(['status', ...access(url, 'nope')]);
    expect(wrongToken.code).toBe(2);
    expect(wrongToken.stderr).toMatch(/no or wrong token/);
    const refused = await runCli(['inject', ...access(url), 'kill:rank=4']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe('error: inject: fault.rank: 4 is not a rank (0..3)\n');

    const inj = await runCli(['inject', ...access(url), 'kill:rank=1', '--json']);
    expect(inj.code, inj.stderr).toBe(0);
    const taken = JSON.parse(inj.stdout) as { id: number; fault: { kind: string } };
    expect(taken.fault).toMatchObject({ kind: 'kill', rank: 1, live: true });
    // Stop early once healed: the report is partial, but the fault's entry is complete.
    await coord.waitFor(/recovered in \d+ ms/, 60_000);
    coord.child.kill('SIGINT');
    const { code } = await coord.exited;
    expect(code).toBe(130);
    const report = JSON.parse(coord.stdout());
    expect(report.faults.find((f: { id?: number }) => f.id === taken.id)).toMatchObject({
      kind: 'kill',
      rank: 1,
      live: true,
      injected: true,
      struck: true,
      detectedBy: 'exit',
      located: 'rank 1',
      action: 'restart rank 1',
    });
    expect(report.wrong).toBe(0);

    const gone = await runCli(['status', ...access(url)]);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/^error: no coordinator answered at http:\/\/127\.0\.0\.1:\d+\/v1\/status/);
  }, 120_000);

  it('a frozen rank: status says the job is stuck and whom it waits for', async () => {
    // A long heartbeat deadline keeps the detector from acting while the test looks.
    const coord = startCli([
      'run', '-w', '3', '-g', '1', '-s', '16KiB', '--steps', '400', '--compute-ms', '20', '--port', '0', '--token', 'tok', '--json', '-',
      '--heartbeat-timeout-ms', '10000', '--timeout-ms', '300', '--on-failure', 'abort',
    ]);
    const url = (await coord.waitFor(/coordinator listening on (ws:\/\/\S+)/))[1];
    await coord.waitFor(/workers ready/);
    const inj = await runCli(['inject', ...access(url), 'hang:rank=2']);
    expect(inj.code, inj.stderr).toBe(0);
    // Polled over HTTP as `ringswarm status` asks (a new CLI process per look is slow on a loaded machine).
    let status: JobStatus | null = null;
    for (let i = 0; i < 200; i++) {
      status = await fetchStatus(url, 'tok').catch(() => null);
      if (!status || (status.waitingFor.length && status.ranks[2].state === 'silent')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(status?.ranks[2].state).toBe('silent');
    expect(status?.waitingFor).toEqual([2]);
    expect(status?.stuckAt).toBe('rank 2');
    const { code } = await coord.exited;
    expect(code).toBe(1);
    const report = JSON.parse(coord.stdout());
    expect(report.faults[0]).toMatchObject({ kind: 'hang', rank: 2, live: true, struck: true, detectedBy: 'heartbeat', located: 'rank 2' });
  }, 120_000);
});
