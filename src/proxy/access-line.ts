import type http from 'node:http';
import pino from 'pino';
import type { Logger } from '../logger';
import { protoOf, refererOf, sniOf, tlsVersionOf, userAgentOf } from './access-fields';
import type { Exchange } from './exchange';

/** pino's number for `info`: the access line is written while the logger's level lets info through. */
const INFO = 30;
const PATH_MAX = 512;

function pathOf(url: string | undefined): string {
  if (!url) return '';
  const q = url.indexOf('?');
  // The query is left out of the log: it is where tokens end up.
  return (q < 0 ? url : url.slice(0, q)).slice(0, PATH_MAX);
}

/** `,"name":value` for text the client or a registration chose (JSON-escaped), nothing when absent. */
function text(name: string, value: string | undefined): string {
  return value === undefined ? '' : `,"${name}":${JSON.stringify(value)}`;
}

/** `,"name":"value"` for text the proxy made of a fixed alphabet (ids, versions, outcomes), nothing when absent. */
function plain(name: string, value: string | undefined): string {
  return value === undefined ? '' : `,"${name}":"${value}"`;
}

/**
 * The access log: one JSON line per exchange, the same line pino writes for `logger.info({event: 'access',
 * ...}, 'request')`, built from a fixed template and handed to the logger's destination. pino's generic
 * serializer walked the record's keys and checked each value's type on every request, which cost most of
 * what the line costs; here each field is a known name with a known kind of value.
 */
export class AccessLog {
  private readonly dest: { write(line: string): unknown };
  private readonly head = `{"level":${INFO},"time":`;
  private readonly pid = `,"pid":${process.pid},"event":"access"`;

  constructor(private readonly logger: Logger) {
    this.dest = (logger as unknown as Record<symbol, { write(line: string): unknown }>)[pino.symbols.streamSym];
  }

  write(req: http.IncomingMessage, ex: Exchange, status: number, ms: number): void {
    if (this.logger.levelVal > INFO) return;
    const socket = req.socket;
    this.dest.write(
      this.head +
        Date.now() +
        this.pid +
        plain('requestId', ex.requestId) +
        plain('traceId', ex.traceId) +
        plain('method', req.method) +
        text('path', pathOf(req.url)) +
        plain('proto', protoOf(req)) +
        `,"status":${status},"bytes":${socket.bytesWritten - ex.bytesBefore},"ms":${ms}` +
        text('tool', ex.tool) +
        text('backend', ex.backend) +
        `,"attempts":${ex.attempts}` +
        plain('outcome', ex.outcome) +
        (ex.held === undefined ? '' : `,"held":${ex.held}`) +
        plain('hold', ex.hold) +
        text('remote', socket.remoteAddress) +
        plain('tls', tlsVersionOf(req)) +
        text('sni', sniOf(req)) +
        text('ua', userAgentOf(req)) +
        text('referer', refererOf(req)) +
        ',"msg":"request"}\n',
    );
  }
}
