import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/logger';

/** One JSON log line as switchboard writes it. */
export interface LogLine {
  level: number;
  event?: string;
  [k: string]: unknown;
}

/** A logger whose lines are kept in memory, as written (`raw`) and parsed (`lines`). */
export interface CapturedLogs {
  logger: Logger;
  /** The lines as written: checks on the bytes (a secret must appear in no form) read these. */
  raw: string[];
  lines: LogLine[];
  /** The lines of one event, after flushing what the logger still holds. */
  events(event: string): LogLine[];
}

/** The production logger (redaction included) writing into memory; debug shows every line a flow can write. */
export function capturingLogger(level = 'debug'): CapturedLogs {
  const raw: string[] = [];
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        raw.push(line);
        lines.push(JSON.parse(line) as LogLine);
      }
      cb();
    },
  });
  const logger = createLogger(level, sink);
  return {
    logger,
    raw,
    lines,
    events(event) {
      logger.flush();
      return lines.filter((l) => l.event === event);
    },
  };
}

/**
 * The JSON lines of a process's output. Lenient (default): lines that are not a whole JSON object (other
 * output, a line still being written) are passed over. Strict: every non-empty line must parse.
 */
export function logLines(output: string, opts: { strict?: boolean } = {}): LogLine[] {
  const out: LogLine[] = [];
  for (const l of output.split('\n')) {
    if (opts.strict) {
      if (l.trim() === '') continue;
      try {
        out.push(JSON.parse(l) as LogLine);
      } catch {
        throw new Error(`not a JSON log line: ${l}`);
      }
    } else if (l.startsWith('{') && l.endsWith('}')) {
      out.push(JSON.parse(l) as LogLine);
    }
  }
  return out;
}

/** The lines of one event in a process's output. */
export function logEvents(output: string, event: string, opts: { strict?: boolean } = {}): LogLine[] {
  return logLines(output, opts).filter((l) => l.event === event);
}
