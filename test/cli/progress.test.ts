// The CLI's live line: rewritten in place on a terminal (cut to its width), paced or quiet on a
// pipe; time left from the pace of the steps counted.
import { describe, expect, it } from 'vitest';
import { Progress, StepEta } from '../../src/cli/progress.js';

function stream(isTTY: boolean, columns = 40): NodeJS.WriteStream & { text: () => string } {
  let out = '';
  return { isTTY, columns, write: (s: string) => ((out += s), true), text: () => out } as unknown as NodeJS.WriteStream & { text: () => string };
}

describe('Progress', () => {
  it('on a terminal: the live line in place, cut to the width, under permanent lines; clear takes it away', () => {
    const s = stream(true, 12);
    const p = new Progress(s);
    p.update('step 1/20  a long line');
    p.line('fault 1');
    p.update('step 2/20');
    p.clear();
    p.done();
    // 12 columns: 11 characters, so the cursor never wraps.
    expect(s.text()).toBe('\r\x1b[2Kstep 1/20  \r\x1b[2Kfault 1\nstep 1/20  \r\x1b[2Kstep 2/20\r\x1b[2K');
  });

  it('on a pipe: at most a line a second, the last one at the end; quiet: none', () => {
    const paced = stream(false);
    const p = new Progress(paced);
    for (let i = 1; i <= 5; i++) p.update(`step ${i}`);
    p.done();
    expect(paced.text()).toBe('step 1\nstep 5\n');
    const quiet = stream(false);
    const q = new Progress(quiet, 'quiet');
    q.update('bench: size 1/3');
    q.line('row');
    q.done();
    expect(quiet.text()).toBe('row\n');
  });
});

describe('StepEta', () => {
  it('from the pace since the first step it saw; nothing for other lines', () => {
    let now = 0;
    const eta = new StepEta(() => now);
    expect(eta.text()).toBe('');
    now = 3000; // start-up and ring-up are not in the pace
    expect(eta.text({ done: 1, total: 41 })).toBe('');
    now = 8000;
    expect(eta.text({ done: 11, total: 41 })).toBe('  ~15 s left');
    now = 23000;
    expect(eta.text({ done: 41, total: 41 })).toBe('');
  });
});
