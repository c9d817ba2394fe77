import type { Assignment, Backend } from './types';

/** How the API renders the data model: ISO-8601 times, and the lease time left at the moment of answering. */

export interface BackendView {
  tool: string;
  id: string;
  url: string;
  source: Backend['source'];
  registeredAt: string;
  lastHeartbeat: string;
  expiresAt: string;
  ttl: number;
  leaseSecondsLeft: number;
  clientVersion?: string;
  instance?: string;
  /** Present (true) while self-preservation holds the backend although its lease lapsed. */
  held?: true;
  restarts?: number;
  /** Its sub-route: the tool's requests under this path go to it. */
  prefix?: string;
}

export interface AssignmentView {
  tool: string;
  host: string;
  port: number;
  createdAt: string;
}

export interface ToolView {
  tool: string;
  backends: BackendView[];
  assignments: AssignmentView[];
}

export function backendView(b: Backend, now: number): BackendView {
  const view: BackendView = {
    tool: b.tool,
    id: b.id,
    url: b.url,
    source: b.source,
    registeredAt: new Date(b.registeredAt).toISOString(),
    lastHeartbeat: new Date(b.lastHeartbeat).toISOString(),
    expiresAt: new Date(b.expiresAt).toISOString(),
    ttl: b.ttl,
    leaseSecondsLeft: Math.max(0, Math.ceil((b.expiresAt - now) / 1000)),
  };
  if (b.clientVersion !== undefined) view.clientVersion = b.clientVersion;
  if (b.instance !== undefined) view.instance = b.instance;
  if (b.held) view.held = true;
  if (b.restarts !== undefined) view.restarts = b.restarts;
  if (b.prefix !== undefined) view.prefix = b.prefix;
  return view;
}

export function assignmentView(a: Assignment): AssignmentView {
  return { tool: a.tool, host: a.host, port: a.port, createdAt: new Date(a.createdAt).toISOString() };
}

export function toolView(entry: { tool: string; backends: Backend[]; assignments: Assignment[] }, now: number): ToolView {
  return {
    tool: entry.tool,
    backends: entry.backends.map((b) => backendView(b, now)),
    assignments: entry.assignments.map(assignmentView),
  };
}
