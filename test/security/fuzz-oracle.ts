import zlib from 'node:zlib';
import type { Assignment } from '../../src/registry/types';
import type { FuzzRequest } from './arbitraries';
import { documentedRoutes, isErrorBody, type Reply } from './support';

/**
 * What the registration API must never do with a fuzzed request, judged from the request, the answer and
 * the state before and after. Returns the violations (empty: fine).
 */

interface Matcher {
  key: string;
  method: string;
  template: string;
  regex: RegExp;
  params: string[];
}

function matchers(): Matcher[] {
  return documentedRoutes().map((r) => {
    const params: string[] = [];
    const source = r.path.replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '{' || c === '}' ? c : `\\${c}`)).replace(/\{(\w+)\}/g, (_, n: string) => {
      params.push(n);
      return '([^/]+)';
    });
    // Express matches case-insensitively and with an optional trailing slash.
    return { key: r.key, method: r.method, template: r.path, regex: new RegExp(`^${source}/?$`, 'i'), params };
  });
}

const MATCHERS = matchers();

/** The JSON the server would have parsed from the body, when it is JSON at all. */
function bodyJson(req: FuzzRequest): unknown {
  if (!req.body) return undefined;
  let raw = req.body;
  const enc = (req.headers['content-encoding'] ?? '').toLowerCase();
  try {
    if (enc === 'gzip') raw = zlib.gunzipSync(raw);
    else if (enc === 'deflate') raw = zlib.inflateSync(raw);
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * May this principal get a 2xx for this request? 'unknown' when the path matches no documented route the
 * oracle understands (then only the other properties apply).
 */
export function mayAct(req: FuzzRequest, assignmentsBefore: Assignment[]): boolean | 'unknown' {
  const p = req.auth.principal;
  if (p.kind === 'admin') return true;
  if (req.method === 'OPTIONS') return 'unknown'; // express answers OPTIONS itself with the allowed methods
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  const path = req.path.split('?')[0];
  for (const m of MATCHERS) {
    if (m.method !== method) continue;
    const hit = m.regex.exec(path);
    if (!hit) continue;
    if (p.kind === 'none') return false;
    const params: Record<string, string> = {};
    try {
      m.params.forEach((name, i) => (params[name] = decodeURIComponent(hit[i + 1])));
    } catch {
      return false; // express refuses a malformed escape before any handler runs
    }
    if (m.key === 'POST /v1/ports') return (bodyJson(req) as { tool?: unknown } | undefined)?.tool === p.tool;
    if (m.key === 'DELETE /v1/ports/{host}/{port}') return assignmentsBefore.some((a) => a.tool === p.tool && String(a.port) === params.port);
    if ('tool' in params) return params.tool === p.tool;
    return false; // admin-only
  }
  // Outside /v1 are the operator endpoints (health, metrics, status), open by design.
  return p.kind === 'none' && /^\/v1(\/|$)/i.test(path) ? false : 'unknown';
}

export interface Observation {
  req: FuzzRequest;
  reply: Reply;
  stateBefore: string | null;
  stateAfter: string | null;
  assignmentsBefore: Assignment[];
}

export function violations(o: Observation): string[] {
  const out: string[] = [];
  const { req, reply } = o;
  if (reply.status >= 500) out.push(`5xx: ${reply.status} ${reply.text.slice(0, 200)}`);
  const rejected = reply.status >= 400;
  const safe = req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS';
  if ((rejected || safe) && o.stateBefore !== null && o.stateBefore !== o.stateAfter) {
    out.push(`state changed by a ${rejected ? `rejected (${reply.status})` : req.method} request`);
  }
  if (reply.status >= 200 && reply.status < 300) {
    const may = mayAct(req, o.assignmentsBefore);
    if (may === false) out.push(`2xx (${reply.status}) for ${req.auth.label}, who may not do this`);
  }
  // Refusals from the API say why in JSON. Node's parser answers what never reaches the application
  // itself, with an empty body and a closed connection: a head over 16 KiB (431), bytes a request line may
  // not hold (400); and an unknown Expect (417).
  const fromNode = (reply.text === '' && reply.headers.connection === 'close' && (reply.status === 400 || reply.status === 431)) || reply.status === 417;
  if (rejected && reply.status < 500 && req.method !== 'HEAD' && !fromNode && /^\/v1(\/|$|\?)/i.test(req.path) && !isErrorBody(reply.body)) {
    out.push(`refusal without an error body: ${reply.status} ${JSON.stringify(reply.text.slice(0, 200))}`);
  }
  if (({} as Record<string, unknown>).polluted !== undefined || ({} as Record<string, unknown>).url !== undefined) {
    out.push('Object.prototype was polluted');
  }
  return out;
}
