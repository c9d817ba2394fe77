import pino from 'pino';
import { TurnBatchedDestination } from './log-batch';

export type Logger = pino.Logger;

/** Paths that may carry secrets in any log object; pino replaces them before a line is written. */
const REDACT = [
  'token',
  'adminToken',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  '*.token',
  '*.adminToken',
  '*.authorization',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  // Asynchronous destination: a log line never blocks the request path on a slow stdout. Lines reach it
  // one event-loop turn at a time (TurnBatchedDestination), and it writes once 32 KiB are pending: each
  // write is a thread-pool round trip of ~15 us of CPU (measured, fs.write to /dev/null), which at 4 KiB
  // still cost the access log several us a line. The buffer is flushed every second too: in a quiet
  // process "store lost" must not wait for 32 KiB of other lines.
  const dest =
    destination ??
    new TurnBatchedDestination(
      pino.destination({ dest: 1, sync: false, minLength: 32 * 1024, maxWrite: 64 * 1024, periodicFlush: 1000, contentMode: 'buffer' }),
      true,
    );
  return pino({ level, base: { pid: process.pid }, redact: { paths: REDACT, censor: '[redacted]' } }, dest);
}

/** A logger that writes nothing (tests that do not read logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
