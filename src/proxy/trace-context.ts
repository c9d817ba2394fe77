import { randomFillSync } from 'node:crypto';
import type http from 'node:http';

// W3C Trace Context (traceparent, tracestate). The proxy records no spans: a well-formed traceparent goes
// to the backend unchanged, so the backend's spans join the client's trace. A request without one gets a
// new trace, so the access line and the backend's spans share an id.

/** version-traceid-parentid-flags, lower-case hex; a later version may add fields after a dash. */
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(?:-|$)/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_PARENT = '0'.repeat(16);
const TRACEPARENT_LENGTH = 55;

/** The trace id of a well-formed traceparent (W3C Trace Context, 3.2), or null. */
export function traceIdOf(traceparent: string): string | null {
  if (traceparent.length < TRACEPARENT_LENGTH || !TRACEPARENT.test(traceparent)) return null;
  const version = traceparent.slice(0, 2);
  // Version 00 has exactly four fields; ff is invalid whatever follows.
  if (version === 'ff' || (version === '00' && traceparent.length !== TRACEPARENT_LENGTH)) return null;
  const traceId = traceparent.slice(3, 35);
  if (traceId === ZERO_TRACE || traceparent.slice(36, 52) === ZERO_PARENT) return null;
  return traceId;
}

// Random bytes drawn 4 KiB at a time: one call to the CSPRNG for 170 traces instead of one for each.
// Ids stay random (backends' samplers read the trace id as a random number), unlike a counter.
const POOL = Buffer.alloc(4096);
let poolAt = POOL.length;

function randomHex(bytes: number): string {
  if (poolAt + bytes > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const hex = POOL.toString('hex', poolAt, poolAt + bytes);
  poolAt += bytes;
  return hex;
}

/**
 * The request's trace: its traceparent kept when well-formed, else replaced by a new one (and tracestate,
 * which means nothing without its traceparent, dropped). Answers the trace id. A new trace is flagged
 * sampled: the access log records every request, so this hop did record it.
 */
export function continueTrace(headers: http.IncomingHttpHeaders): string {
  const given = headers.traceparent;
  const kept = typeof given === 'string' ? traceIdOf(given) : null;
  if (kept !== null) return kept;
  if (headers.tracestate !== undefined) delete headers.tracestate;
  const traceId = randomHex(16);
  headers.traceparent = `00-${traceId}-${randomHex(8)}-01`;
  return traceId;
}
