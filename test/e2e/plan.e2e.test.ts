// `ringswarm plan` through the built CLI: the JSON it writes, the table, the report it reads, bad flags.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ringswarm-plan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BASE = ['plan', '--cards', '1000', '--card-mtbf-hours', '50000', '--checkpoint-ms', '60000', '--recovery-ms', '600000'];

describe('ringswarm plan', () => {
  it('writes { rows, references } with --json -, the table going to stderr', async () => {
    const r = await runCli([...BASE, '--json', '-']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.rows.map((x: { cards: number }) => x.cards)).toEqual([1_000, 10_000, 100_000]);
    for (const row of out.rows) {
      expect(Object.keys(row)).toEqual(expect.arrayContaining(['cards', 'jobMtbfHours', 'optimalIntervalS', 'ettr']));
      expect(row.ettr).toBeGreaterThanOrEqual(0);
      expect(row.ettr).toBeLessThanOrEqual(1);
    }
    // M = 50 h; Daly 4,607.67 s; ETTR 0.97116 (worked in test/coordinator/plan.test.ts)
    expect(out.rows[0]).toMatchObject({ cards: 1000, jobMtbfHours: 50, given: true });
    expect(out.rows[0].optimalIntervalS).toBeCloseTo(4607.67, 1);
    expect(out.rows[0].ettr).toBeCloseTo(0.97116, 5);
    expect(out.references.map((x: { cards: number; jobMtbfHours: number }) => x.cards)).toEqual([1024, 16384, 10000, 10000]);
    expect(out.references[0].perCardMtbfHours).toBeCloseTo(8089.6, 6);
    expect(r.stderr).toMatch(/ETTR %/);
    expect(r.stderr).toMatch(/Meta job MTTF\s+1,024\s+7\.9\s+8,090/);
  });

  it('takes checkpoint and recovery times from a run report, flags overriding it', async () => {
    const file = join(dir, 'run.json');
    writeFileSync(
      file,
      JSON.stringify({ ok: true, cards: 64, computeMs: { p50: 40, p90: 50, p99: 60, max: 61 }, faults: [{ kind: 'kill', recoveredAfterMs: 700 }, { kind: 'hang', recoveredAfterMs: 900 }] }),
    );
    const r = await runCli(['plan', '--card-mtbf-hours', '50000', '--from-report', file, '--json', '-']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.inputs).toMatchObject({ cards: 64, checkpointMs: 40, recoveryMs: 800 });
    expect(out.inputs.checkpointFrom).toMatch(/computeMs\.p50/);
    expect(out.rows.map((x: { cards: number }) => x.cards)).toEqual([64, 1_000, 10_000, 100_000]);
    const o = await runCli(['plan', '--card-mtbf-hours', '50000', '--from-report', file, '--checkpoint-ms', '5', '--cards', '8', '--json', '-']);
    expect(JSON.parse(o.stdout).inputs).toMatchObject({ cards: 8, checkpointMs: 5, checkpointFrom: '--checkpoint-ms', recoveryMs: 800 });
  });

  it.each([
    [['plan', '--cards', '0', '--card-mtbf-hours', '1', '--checkpoint-ms', '1', '--recovery-ms', '1'], /--cards.*integer from 1/],
    [['plan', '--cards', '10', '--card-mtbf-hours', '-5', '--checkpoint-ms', '1', '--recovery-ms', '1'], /--card-mtbf-hours/],
    [['plan', '--cards', '10', '--checkpoint-ms', '1', '--recovery-ms', '1'], /--card-mtbf-hours/],
    [['plan', '--cards', '10', '--card-mtbf-hours', '100', '--recovery-ms', '1'], /--checkpoint-ms/],
    [['plan', '--cards', '10', '--card-mtbf-hours', '100', '--checkpoint-ms', 'soon', '--recovery-ms', '1'], /--checkpoint-ms.*number/],
    [['plan', '--cards', '10', '--card-mtbf-hours', '100', '--checkpoint-ms', '1', '--recovery-ms', '1', '--step-ms', '0'], /--step-ms/],
    [['plan', '--card-mtbf-hours', '100', '--from-report', '/nonexistent/run.json'], /--from-report \/nonexistent\/run.json/],
  ])('%j is refused with status 2', async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('names what is missing in a report that has no recovered fault', async () => {
    const file = join(dir, 'clean.json');
    writeFileSync(file, JSON.stringify({ ok: true, cards: 64, computeMs: { p50: 40, p90: 50, p99: 60, max: 61 }, faults: [] }));
    const r = await runCli(['plan', '--card-mtbf-hours', '100', '--from-report', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no recovered fault.*--recovery-ms/);
    const bad = join(dir, 'bench.json');
    writeFileSync(bad, JSON.stringify({ rows: [], avgBusbwGBps: 1 }));
    const b = await runCli(['plan', '--card-mtbf-hours', '100', '--from-report', bad]);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/not a ringswarm run report: computeMs/);
  });
});
