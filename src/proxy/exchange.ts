import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ClientShare } from './client-slots';
import { requestIdOf } from './forward-headers';
import type { HoldOutcome } from './hold';
import { continueTrace } from './trace-context';

/** What the proxy learns of one request (or upgrade) while it handles it: the access-log record and the metric labels. */
export interface Exchange {
  requestId: string;
  started: number;
  tool?: string;
  /** The tool as found in the table: the only tool name metrics may carry (a URL can name anything). */
  routeTool?: string;
  backend?: string;
  attempts: number;
  outcome: string;
  /** Ms the request waited for a backend of its tool (proxy.holdMs), and how that ended; absent: never held. */
  held?: number;
  hold?: HoldOutcome;
  /** Every backend tried was held by self-preservation and refused: the tool is not running (503, not 502). */
  notRunning?: boolean;
  /** The W3C trace the request goes on with (proxy.traceContext); undefined when that is off. */
  traceId: string | undefined;
  /**
   * The client connection's bytes written before this exchange: the access log's `bytes` is what was
   * written since (an HTTP/1 connection carries one exchange at a time).
   */
  bytesBefore: number;
  /** The backend-connection slot of its client the request holds until its response closes (client-slots.ts). */
  slot: ClientShare | undefined;
  /** The tool policy's responseTimeoutSeconds, in ms; undefined: the proxy's own (proxy.responseTimeoutMs). */
  responseTimeoutMs: number | undefined;
}

/** An exchange begins: its request id, and its trace when `traceContext` is on (which may set traceparent). */
export function startExchange(req: http.IncomingMessage, traceContext: boolean): Exchange {
  return {
    requestId: requestIdOf(req),
    started: performance.now(),
    attempts: 0,
    outcome: '',
    traceId: traceContext ? continueTrace(req.headers) : undefined,
    bytesBefore: req.socket.bytesWritten,
    slot: undefined,
    responseTimeoutMs: undefined,
  };
}
