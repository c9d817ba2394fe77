/** Requests answered, and of those the ones answered with a 5xx status. */
export interface RequestCount {
  requests: number;
  serverErrors: number;
}

/**
 * The requests this proxy answered, in all and per tool of the route table, as plain numbers the status
 * page turns into rates. A request costs one Map lookup and a few additions: no label hashing, no store.
 * A tool's entry lives while it has traffic; the reader forgets idle ones (forget), so tools that come
 * and go do not pile up.
 */
export class TrafficCounters implements RequestCount {
  requests = 0;
  serverErrors = 0;
  private readonly tools = new Map<string, RequestCount>();

  /** An answered request; `tool` is '' when the request named no tool of the table. */
  count(tool: string, status: number): void {
    const error = status >= 500 && status <= 599 ? 1 : 0;
    this.requests++;
    this.serverErrors += error;
    if (tool === '') return;
    let c = this.tools.get(tool);
    if (!c) this.tools.set(tool, (c = { requests: 0, serverErrors: 0 }));
    c.requests++;
    c.serverErrors += error;
  }

  forEachTool(visit: (tool: string, count: Readonly<RequestCount>) => void): void {
    for (const [tool, c] of this.tools) visit(tool, c);
  }

  /** Drops a tool's entry; its next request starts it again from zero. */
  forget(tool: string): void {
    this.tools.delete(tool);
  }
}
