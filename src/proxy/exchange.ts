import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ClientShare } from './client-slots';
import { requestIdOf } from './forward-headers';
import type { HoldOutcome } from './hold';

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
  /** The backend-connection slot of its client the request holds until its response closes (client-slots.ts). */
  slot?: ClientShare;
}

export function startExchange(req: http.IncomingMessage): Exchange {
  return { requestId: requestIdOf(req), started: performance.now(), attempts: 0, outcome: '' };
}
