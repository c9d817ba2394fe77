import pino from 'pino';

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
  // Asynchronous destination: a log line never blocks the request path on a slow stdout. The buffer is
  // flushed every second too: in a quiet process "store lost" must not wait for 4 KiB of other lines.
  // 4 KiB stays: a bigger buffer makes fewer thread-pool writes but sonic-boom measures the whole pending
  // buffer on every line (Buffer.byteLength), which cost the access log more than it saved (bench/proxy.ts).
  const dest = destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 1000 });
  return pino({ level, base: { pid: process.pid }, redact: { paths: REDACT, censor: '[redacted]' } }, dest);
}

/** A logger that writes nothing (tests that do not read logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
