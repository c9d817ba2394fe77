import type http from 'node:http';

/** Answers a request itself and says true, or says false and leaves the request untouched. */
export type FastPath = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

/**
 * The control port's request listener: the fast paths (the registry's heartbeats) see each request first,
 * express answers everything they leave. Production and the API tests compose the port through this.
 */
export function controlListener(app: http.RequestListener, fastPaths: FastPath[]): http.RequestListener {
  if (fastPaths.length === 0) return app;
  return (req, res) => {
    for (const fast of fastPaths) if (fast(req, res)) return;
    app(req, res);
  };
}
