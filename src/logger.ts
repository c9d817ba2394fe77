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
  // Asynchronous destination: a log line never blocks the request path on a slow stdout. Each write is a
  // round trip through libuv's thread pool (tens of us): at 4 KiB per write the access log paid ~3 us of
  // it per request, at 32 KiB a tenth of that (bench/proxy.ts). The buffer is flushed every second too: in
  // a quiet process "store lost" must not wait for 32 KiB of other lines.
  const dest = destination ?? pino.destination({ dest: 1, sync: false, minLength: 32 * 1024, maxWrite: 64 * 1024, periodicFlush: 1000 });
  return pino({ level, base: { pid: process.pid }, redact: { paths: REDACT, censor: '[redacted]' } }, dest);
}

/** A logger that writes nothing (tests that do not read logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
