// `ringswarm status` and `ringswarm inject`: an operator's look into, and faults into, a running job
// (the coordinator's control port answers them; see src/protocol/operator.ts).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { COORDINATOR_ENV, coordinatorAccess, TOKEN_ENV, TOKEN_FILE_ENV } from '../api/launcher.js';
import { intIn, UsageError } from '../api/flags.js';
import { EXIT } from '../protocol/exit-codes.js';
import type { JobStatus } from '../protocol/operator.js';
import { formatBytes } from '../protocol/units.js';

// The HTTP client, loaded by the command that asks (not by `ringswarm --help` or another command).
const client = () => import('../runtime/operator-client.js');

interface AccessFlags {
  url?: string;
  token?: string;
  tokenFile?: string;
  timeoutMs: number;
}

function accessOptions(cmd: Command): Command {
  return cmd
    .option('--url <ws-url>', `the coordinator, as \`ringswarm run\` printed it: ws://host:port or host:port (default: $${COORDINATOR_ENV})`)
    .option('--token <token>', `the job token (default: $${TOKEN_ENV})`)
    .option('--token-file <path>', `read the token from this file (default: $${TOKEN_FILE_ENV})`)
    .option('--timeout-ms <ms>', 'give up on an answer after this long', intIn(1, 600_000), 10_000);
}

/** A request that failed: its message, and the exit code a script can tell apart. */
async function asking(what: () => Promise<void>): Promise<void> {
  try {
    await what();
  } catch (e) {
    if (!(e instanceof (await client()).OperatorRequestError)) throw e;
    process.stderr.write(`error: ${e.message}\n`);
    process.exitCode = e.code === 'RS_ERR_PEER_LOST' ? EXIT.coordinatorLost : e.code === 'RS_ERR_USAGE' || e.code === 'RS_ERR_AUTH' ? EXIT.usage : EXIT.failed;
  }
}

const pad = (cells: string[], widths: number[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();

/** The status as a table: the job, then a line per rank. */
export function formatStatus(s: JobStatus): string {
  const j = s.job;
  const lines = [
    `job: ${j.workers} workers x ${j.cardsPerWorker} cards, ${formatBytes(j.bytesPerCard)} per card, ${j.algo}, --on-failure ${j.onFailure}`,
    `${s.phase}, epoch ${s.epoch}, step ${Math.min(s.step + 1, j.steps)}/${j.steps}` +
      (s.step >= j.steps ? ' (all done)' : '') +
      `; faults: ${s.faults.injected} injected, ${s.faults.detected} detected, ${s.faults.recovered} recovered`,
  ];
  const head = ['rank', 'pid', 'host', 'state', 'op', 'phase', 'chunk', 'heartbeat'];
  const rows = s.ranks.map((r) => [
    r.rank === r.home ? String(r.rank) : `${r.rank} (${r.home} at launch)`,
    String(r.pid),
    r.host ?? '-',
    r.state,
    r.opSeq === null ? '-' : String(r.opSeq),
    r.phase ?? '-',
    r.chunk === null ? '-' : String(r.chunk),
    `${r.heartbeatAgeMs} ms ago`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  lines.push(pad(head, widths), ...rows.map((r) => pad(r, widths)));
  if (s.spares.length) lines.push(`spares: ${s.spares.map((x) => `${x.workerId} (pid ${x.pid})`).join(', ')}`);
  if (s.stuckAt) lines.push(`stuck at ${s.stuckAt}${s.waitingFor.length ? `: the others wait for rank ${s.waitingFor.join(', ')}` : ''}`);
  return `${lines.join('\n')}\n`;
}

export function registerOperator(program: Command): void {
  accessOptions(program.command('status').description('ask a running job: epoch, step, and per rank its process, state, last op and heartbeat; when it is stuck, whom everyone waits for'))
    .option('--json', 'print { job, phase, epoch, step, ranks: [{ rank, pid, host, state, opSeq, phase, chunk, heartbeatAgeMs }], waitingFor, ... }')
    .action((o: AccessFlags & { json?: boolean }) =>
      asking(async () => {
        const a = coordinatorAccess(o, process.env, (f) => readFileSync(f, 'utf8'));
        const s = await (await client()).fetchStatus(a.controlUrl, a.token, o.timeoutMs);
        process.stdout.write(o.json ? `${JSON.stringify(s, null, 2)}\n` : formatStatus(s));
      }),
    );

  accessOptions(
    program
      .command('inject')
      .description("inject a fault into a running job: the --inject shorthand, ranks as at launch; without step= or atMs= it strikes now ('kill:rank=3', 'hang:rank=2:ms=800', 'link:from=1:cut=true:step=12')")
      .argument('<fault>', 'the fault, in the --inject shorthand'),
  )
    .option('--json', 'print { id, fault } as the report will hold it')
    .action((spec: string, o: AccessFlags & { json?: boolean }) =>
      asking(async () => {
        if (spec.trim() === '') throw new UsageError('the fault is empty: e.g. kill:rank=3');
        const a = coordinatorAccess(o, process.env, (f) => readFileSync(f, 'utf8'));
        const r = await (await client()).postInject(a.controlUrl, a.token, spec, o.timeoutMs);
        process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : `injected fault ${r.id}: ${spec} (the report's faults[] entry with id ${r.id} says when it struck, how it was found and healed)\n`);
      }),
    );
}
