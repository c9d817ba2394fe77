import http2 from 'node:http2';

/** An HTTP/2 session to 127.0.0.1:`port` over TLS with `servername` as SNI, trusting only `ca`. */
export function h2Session(port: number, opts: { servername: string; ca: string | string[]; settings?: http2.Settings }): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { servername: opts.servername, ca: opts.ca, settings: opts.settings });
    session.once('error', reject);
    session.once('connect', () => {
      session.off('error', reject);
      // A session a test left open or the server closed must not throw on a late error.
      session.on('error', () => undefined);
      resolve(session);
    });
  });
}

export interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

/** One request on `session`: `path` with `headers` (pseudo-headers allowed), `body` sent whole when given. */
export function h2Request(session: http2.ClientHttp2Session, path: string, opts: { method?: string; headers?: http2.OutgoingHttpHeaders; body?: string | Buffer } = {}): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ':method': opts.method ?? 'GET', ...opts.headers }, { endStream: opts.body === undefined });
    let headers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (headers = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks).toString('utf8') }));
    stream.on('error', reject);
    if (opts.body !== undefined) stream.end(opts.body);
  });
}

/** A request on a session of its own, closed after. */
export async function h2Once(port: number, path: string, opts: { servername: string; ca: string | string[]; method?: string; headers?: http2.OutgoingHttpHeaders; body?: string }): Promise<H2Reply> {
  const session = await h2Session(port, opts);
  try {
    return await h2Request(session, path, opts);
  } finally {
    session.close();
  }
}
