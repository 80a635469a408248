// The error a caller's bad input throws, from the CLI and the API alike (the CLI prints it and exits 2).
export { RingswarmUsageError } from '../protocol/errors.js';
