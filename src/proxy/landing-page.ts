import type http from 'node:http';
import type { RouteSource, RouteTable } from '../table/route-table';
import { escapeHtml, wantsJson } from './error-pages';

interface Listing {
  html: string;
  json: string;
}

/**
 * `GET /` on the proxy port (proxy.landingPage): the tools that have a live backend, by name, each a link to
 * `/<tool>/`. Made once per route table (the walk over every tool is not a request's to pay), answered from
 * memory after.
 */
export class LandingPage {
  private table: RouteTable | null = null;
  private listing: Listing | null = null;

  constructor(private readonly routes: RouteSource) {}

  /** Whether this is the landing page's request: GET or HEAD of `/` itself. */
  static asks(req: http.IncomingMessage): boolean {
    return (req.method === 'GET' || req.method === 'HEAD') && (req.url === '/' || req.url?.startsWith('/?') === true);
  }

  answer(req: http.IncomingMessage, res: http.ServerResponse, requestId: string): void {
    const listing = this.current();
    const json = wantsJson(req.headers.accept);
    const body = json ? listing.json : listing.html;
    res.writeHead(200, {
      'content-type': json ? 'application/json; charset=utf-8' : 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
      'x-request-id': requestId,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private current(): Listing {
    const table = this.routes.current();
    if (this.listing && table === this.table) return this.listing;
    const tools: string[] = [];
    if (table) for (const route of table.tools()) if (route.backends.some((b) => !b.held)) tools.push(route.tool);
    tools.sort();
    const items = tools.map((t) => `<li><a href="/${escapeHtml(t)}/">${escapeHtml(t)}</a></li>`).join('');
    this.table = table;
    this.listing = {
      html:
        '<!doctype html><html><head><meta charset="utf-8"><title>Tools</title></head><body><h1>Tools</h1>' +
        (tools.length ? `<ul>${items}</ul>` : '<p>No tool is running.</p>') +
        '</body></html>\n',
      json: JSON.stringify({ tools: tools.map((name) => ({ name, url: `/${name}/` })) }),
    };
    return this.listing;
  }
}
