// The `ringswarm` program as both entries build it (cli.ts: every command; worker-entry.ts: only
// `worker`, inside the worker bundle), and how either ends on an error: a usage error status 2, a
// failure status 1.
import { Command, CommanderError } from 'commander';
import { UsageError } from '../api/flags.js';

export function newProgram(): Command {
  return new Command('ringswarm')
    .description('Emulate a large AI training cluster on one machine: real worker processes run exact ring all-reduce over WebSockets.')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
}

export async function runProgram(program: Command, argv: readonly string[] = process.argv): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`ringswarm: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  }
}
