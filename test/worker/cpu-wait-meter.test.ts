// The CPU wait taken out of a rank's compute time: all of it while working, in a sleep only the overrun.
import { describe, expect, it } from 'vitest';
import { CpuWaitMeter } from '../../src/worker/cpu-wait-meter.js';
import { cpuWaitReader } from '../../src/runtime/cpu-wait.js';

describe('CpuWaitMeter', () => {
  it('counts the wait while working, and in a sleep only what the sleep overran', () => {
    let q = 100;
    const m = new CpuWaitMeter(() => q);
    q += 4; // 4 ms waiting for a CPU while working
    m.worked();
    expect(m.waited).toBe(4);
    q += 9; // a 20 ms sleep took 27: 9 ms of waits inside it, of which 7 delayed its end
    m.slept(20, 27);
    expect(m.waited).toBe(11);
    q += 3; // a sleep that ended on time: waits inside it delayed nothing
    m.slept(20, 20.2);
    expect(m.waited).toBeCloseTo(11.2);
    q += 1; // a stopped process overruns its sleep without waiting for a CPU: the stall stays
    m.slept(20, 500);
    expect(m.waited).toBeCloseTo(12.2);
    m.reset();
    expect(m.waited).toBe(0);
    q += 2;
    m.worked();
    expect(m.waited).toBe(2);
  });

  it('with no reading (0 throughout) takes nothing out', () => {
    const m = new CpuWaitMeter(() => 0);
    m.worked();
    m.slept(20, 35);
    expect(m.waited).toBe(0);
  });
});

describe('cpuWaitReader', () => {
  it.runIf(process.platform === 'linux')('reads a monotonic run-queue delay on Linux', () => {
    const read = cpuWaitReader();
    expect(read).not.toBeNull();
    const a = read!();
    let x = 0;
    for (let i = 0; i < 1e6; i++) x += i;
    const b = read!();
    expect(x).toBeGreaterThan(0);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(b).toBeGreaterThanOrEqual(a);
  });
});
