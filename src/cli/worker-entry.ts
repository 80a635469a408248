#!/usr/bin/env node
// The worker bundle's entry (esbuild makes dist/worker.cjs of it; dist/worker-loader.cjs runs that
// from V8's code cache). A worker the coordinator spawned takes its settings from the environment
// (src/worker/main.ts); `ringswarm worker ...`, which main.ts hands to the loader before it loads
// anything else, from its flags, parsed here with the same definition, help and errors as the
// full CLI's (worker-command.ts, program.ts).
if (process.argv[2] === 'worker') {
  // Loaded on this path only: a spawned worker initialises no commander.
  void Promise.all([import('./program.js'), import('./worker-command.js'), import('./worker-start.js')]).then(([{ newProgram, runProgram }, { workerCommand }, { startWorker }]) => {
    const program = newProgram();
    workerCommand(program).action(startWorker);
    return runProgram(program);
  });
} else {
  void import('../worker/main.js');
}
