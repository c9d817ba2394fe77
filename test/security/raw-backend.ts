import net from 'node:net';
import type { AddressInfo } from 'node:net';

/** One request as a strict HTTP/1.1 reader saw it on the wire, with anything ambiguous about it. */
export interface SeenRequest {
  method: string;
  target: string;
  /** Header lines as received: [name, value], names as sent. */
  headers: Array<[string, string]>;
  body: Buffer;
  /** Framing a careful backend would refuse or might read differently from the proxy. */
  anomalies: string[];
}

/**
 * A backend on a raw TCP socket that logs exactly what it receives: every byte per connection, and each
 * request as a strict reader frames it (Content-Length or chunked, nothing else). It answers 200 with a
 * small body and keeps the connection open, so a second request on a pooled connection is seen as one.
 */
export class RawBackend {
  port = 0;
  readonly requests: SeenRequest[] = [];
  /** Bytes per accepted connection, in arrival order. */
  readonly connections: Buffer[][] = [];
  /** Connections refused by the reader (unparseable input); the socket was closed. */
  readonly garbage: string[] = [];
  private readonly server = net.createServer((s) => this.accept(s));
  private readonly sockets = new Set<net.Socket>();

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(host = '127.0.0.1'): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, host, () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  reset(): void {
    this.requests.length = 0;
    this.connections.length = 0;
    this.garbage.length = 0;
  }

  /** Everything received, as latin1 text. */
  bytes(): string {
    return this.connections.map((c) => Buffer.concat(c).toString('latin1')).join('\n---\n');
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
    const log: Buffer[] = [];
    this.connections.push(log);
    let buf = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      log.push(chunk);
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const r = readRequest(buf);
        if (r === 'more') return;
        if (typeof r === 'string') {
          this.garbage.push(r);
          s.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
          buf = Buffer.alloc(0);
          return;
        }
        buf = buf.subarray(r.used);
        this.requests.push(r.request);
        const body = `seen ${r.request.method} ${r.request.target}`;
        s.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      }
    });
  }
}

/** One request from the front of `buf`: 'more' when incomplete, a string when it cannot be framed at all. */
function readRequest(buf: Buffer): { request: SeenRequest; used: number } | 'more' | string {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return buf.length > 64 * 1024 ? 'head too large' : 'more';
  const anomalies: string[] = [];
  const head = buf.subarray(0, end).toString('latin1');
  if (/(^|[^\r])\n/.test(head)) anomalies.push('bare LF in head');
  const lines = head.split('\r\n');
  const m = /^([A-Z-]+) (\S+) HTTP\/1\.[01]$/.exec(lines[0]);
  if (!m) return `bad request line ${JSON.stringify(lines[0].slice(0, 80))}`;
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0 || /\s/.test(line.slice(0, colon))) return `bad header line ${JSON.stringify(line.slice(0, 80))}`;
    headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  const all = (name: string) => headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
  const cl = all('content-length');
  const te = all('transfer-encoding');
  if (cl.length > 1) anomalies.push('duplicate Content-Length');
  if (te.length > 1) anomalies.push('duplicate Transfer-Encoding');
  if (cl.length && te.length) anomalies.push('Content-Length with Transfer-Encoding');
  let pos = end + 4;
  let body: Buffer;
  if (te.length) {
    const codings = te.join(',').split(',').map((c) => c.trim());
    if (codings[codings.length - 1] !== 'chunked') anomalies.push(`Transfer-Encoding not ending in plain "chunked": ${JSON.stringify(te)}`);
    const parts: Buffer[] = [];
    for (;;) {
      const eol = buf.indexOf('\r\n', pos);
      if (eol < 0) return 'more';
      const sizeText = buf.subarray(pos, eol).toString('latin1').split(';')[0];
      if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) return `bad chunk size ${JSON.stringify(sizeText)}`;
      const size = parseInt(sizeText, 16);
      if (size === 0) {
        // Trailers, then the blank line.
        const trailerEnd = buf.indexOf('\r\n', eol + 2);
        if (trailerEnd < 0) return 'more';
        if (trailerEnd !== eol + 2) {
          const fullEnd = buf.indexOf('\r\n\r\n', eol);
          if (fullEnd < 0) return 'more';
          pos = fullEnd + 4;
        } else {
          pos = eol + 4;
        }
        break;
      }
      if (buf.length < eol + 2 + size + 2) return 'more';
      parts.push(buf.subarray(eol + 2, eol + 2 + size));
      if (buf.subarray(eol + 2 + size, eol + 4 + size).toString('latin1') !== '\r\n') return 'chunk without CRLF';
      pos = eol + 4 + size;
    }
    body = Buffer.concat(parts);
  } else if (cl.length) {
    if (!/^\d+$/.test(cl[0])) return `bad Content-Length ${JSON.stringify(cl[0])}`;
    const n = Number(cl[0]);
    if (buf.length < pos + n) return 'more';
    body = Buffer.from(buf.subarray(pos, pos + n));
    pos += n;
  } else {
    body = Buffer.alloc(0);
  }
  return { request: { method: m[1], target: m[2], headers, body, anomalies }, used: pos };
}

/**
 * Writes raw bytes to host:port and collects the answer until the peer closes or has been silent for
 * `idleMs` (a kept-alive connection), then closes.
 */
export function exchange(port: number, bytes: string | Buffer, idleMs = 600, host = '127.0.0.1'): Promise<{ text: string; closedByPeer: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    const chunks: Buffer[] = [];
    let closedByPeer = false;
    let timer: NodeJS.Timeout | undefined;
    const idle = () => {
      clearTimeout(timer);
      timer = setTimeout(() => s.destroy(), idleMs);
    };
    s.on('connect', () => {
      s.write(bytes);
      idle();
    });
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      idle();
    });
    s.on('end', () => {
      closedByPeer = true;
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedByPeer });
    });
  });
}

/** The status codes of every response in a byte stream (a 100 Continue included). */
export function statusLines(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}
