// Where a proxy's CPU goes, from a V8 CPU profile (--cpu-prof): each sample's self time is put in one
// category by the function's file, and a category's share of the busy time (idle left out) is scaled to
// the CPU per request measured for that process. Two profiles side by side show what switchboard pays
// beyond the engine it is built on.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Categories in report order; the first whose test matches a frame takes its time. */
const CATEGORIES: Array<[name: string, test: (url: string, fn: string) => boolean]> = [
  ['socket writes (writev, string encoding: system calls)', (u, f) => u === '' && /^(writev|writeLatin1String|writeUtf8String|writeBuffer|writeAsciiString)$/.test(f)],
  ['switchboard: access log (line, batching, sonic-boom)', (u) => /access-line|access-fields|log-batch|sonic-boom|\/pino\//.test(u)],
  ['switchboard: metrics (counts, histogram, prom-client)', (u) => /accounting|plain-metrics|traffic-counters|prom-client/.test(u)],
  ['switchboard: header rules (forwarding headers, trace context, Via)', (u) => /forward-headers|header-filter|forwarded|trace-context|via\.js|forward-policy/.test(u)],
  ['switchboard: routing, hot path, forwarder, timeouts', (u) => /\/dist\/src\//.test(u)],
  ['undici: client and HTTP parser (wasm)', (u) => /undici|^wasm:/.test(u)],
  ['Node: HTTP server, streams, sockets, events', (u) => /^node:(_http|internal\/streams|net|events|internal\/stream_base|buffer|internal\/buffer|stream|_stream)/.test(u)],
  ['Node: promises, ticks, timers', (u, f) => /^node:(internal\/process|internal\/timers|timers)/.test(u) || f === 'runMicrotasks'],
  ['garbage collection', (_u, f) => f === '(garbage collector)'],
  ['other (V8 unattributed, regexps, natives)', () => true],
];

/** Each category's share (0..1) of the profile's busy time. */
export function categoryShares(file: string): Map<string, number> {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  const byCategory = new Map<string, number>(CATEGORIES.map(([name]) => [name, 0]));
  let busy = 0;
  for (const n of p.nodes) {
    const t = self.get(n.id) ?? 0;
    const { url, functionName } = n.callFrame;
    if (functionName === '(idle)' || t === 0) continue;
    busy += t;
    const name = CATEGORIES.find(([, test]) => test(url, functionName))![0];
    byCategory.set(name, byCategory.get(name)! + t);
  }
  for (const [k, v] of byCategory) byCategory.set(k, busy > 0 ? v / busy : 0);
  return byCategory;
}

/** A markdown table: µs per request by category for each profile (its share times its measured CPU per request). */
export function breakdownTable(columns: Array<{ name: string; file: string; cpuUs: number }>): string[] {
  const shares = columns.map((c) => categoryShares(c.file));
  const us = (i: number, cat: string) => shares[i].get(cat)! * columns[i].cpuUs;
  const last = columns.length - 1;
  return [
    `| where | ${columns.map((c) => `${c.name} us/request`).join(' | ')} | difference (${columns[last].name} - ${columns[0].name}) |`,
    `|---|${columns.map(() => '---|').join('')}---|`,
    ...CATEGORIES.map(([cat]) => `| ${cat} | ${columns.map((_, i) => us(i, cat).toFixed(1)).join(' | ')} | ${(us(last, cat) - us(0, cat)).toFixed(1)} |`),
    `| **all** | ${columns.map((c) => c.cpuUs.toFixed(1)).join(' | ')} | ${(columns[last].cpuUs - columns[0].cpuUs).toFixed(1)} |`,
  ];
}
