#!/usr/bin/env node
// Worker process entry: wire real I/O (WebSockets, timers, process) into the Worker logic.
import { startWorkerProcess } from './start.js';

startWorkerProcess({
  controlUrl: process.env.RINGSWARM_CONTROL_URL ?? '',
  token: process.env.RINGSWARM_TOKEN ?? '',
  workerId: process.env.RINGSWARM_WORKER_ID ?? `w${process.pid}`,
  spawned: process.env.RINGSWARM_SPAWNED === '1',
  host: process.env.RINGSWARM_HOST ?? '127.0.0.1',
  // Bound to every interface (run --host 0.0.0.0): peers on this host dial loopback unless told.
  advertise: process.env.RINGSWARM_ADVERTISE_ADDR || (process.env.RINGSWARM_HOST === '0.0.0.0' ? '127.0.0.1' : null),
});
