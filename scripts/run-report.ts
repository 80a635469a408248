// Run `ringswarm run ... --json -` as a child process and return its report (for the scripts).
// Bounded: after `timeoutMs` the run is interrupted (SIGINT), which still prints a partial report.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

export function runReport<T>(args: string[], timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'run', ...args, '--json', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const t = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('exit', () => {
      clearTimeout(t);
      try {
        resolve(JSON.parse(out) as T);
      } catch {
        reject(new Error(`ringswarm run ${args.join(' ')} printed no report:\n${err.slice(-2000)}`));
      }
    });
  });
}
