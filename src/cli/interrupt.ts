// Ctrl-C and SIGTERM during a job (run, demo): stop it and still give a partial report.
import type { Progress } from './progress.js';

/** Ctrl-C and SIGTERM stop the job and still give a partial report; the status is then 128 + the signal's number. */
export function interruptible(progress: Progress): { signal: AbortSignal; status: () => number; release: () => void } {
  const ctl = new AbortController();
  let stoppedBy = 'SIGINT' as 'SIGINT' | 'SIGTERM';
  const onSignal = (sig: 'SIGINT' | 'SIGTERM') => () => {
    stoppedBy = sig;
    progress.line('interrupted: stopping, partial report follows');
    ctl.abort();
  };
  const onSigint = onSignal('SIGINT');
  const onSigterm = onSignal('SIGTERM');
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigterm);
  return {
    signal: ctl.signal,
    status: () => (stoppedBy === 'SIGTERM' ? 143 : 130),
    release: () => {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigterm);
    },
  };
}
