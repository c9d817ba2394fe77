import http from 'node:http';
import type { Duplex } from 'node:stream';

/** Parser errors a request line's version can cause; the HTTP/2 connection preface (`PRI * HTTP/2.0`) is the second. */
const VERSION_ERRORS = new Set(['HPE_INVALID_VERSION', 'HPE_PAUSED_H2_UPGRADE']);

/** A request line well formed but for its version: `HTTP/` a digit, `.` and a digit, or a digit alone as HTTP/2 and 3 are named. */
const OTHER_VERSION = /^\S+ \S+ HTTP\/\d(?:\.\d)?\r\n/;

/**
 * The status and error code answered to a parser error. A request line of another HTTP than the parser
 * speaks (HTTP/1.2, HTTP/3.0, HTTP/2, the HTTP/2 preface) is RFC 9110 15.6.6's 505, as are the HTTP/2.0 and
 * HTTP/0.9 lines it lets through (the proxy's handler answers those); one broken around its version (a bare
 * LF after it, `HTTP/1.10`) is a 400 like any malformed request.
 */
function refusalOf(err: NodeJS.ErrnoException, head: string): [number, string] {
  if (err.code === 'HPE_HEADER_OVERFLOW') return [431, 'headers_too_large'];
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'request_timeout'];
  if (err.code !== undefined && VERSION_ERRORS.has(err.code) && OTHER_VERSION.test(head)) return [505, 'version_not_supported'];
  return [400, 'bad_request'];
}

/**
 * Answers a request Node's parser refused (malformed, headers too large, too slow, another HTTP version) with
 * the same JSON error body as every other refusal, instead of Node's empty 400. Returns the status sent, or
 * null when the socket was only closed (the peer is gone, or an answer was already on its way).
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): number | null {
  const pending = (socket as Duplex & { _httpMessage?: http.ServerResponse })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || pending?.headersSent) {
    socket.destroy();
    return null;
  }
  // What the parser was given last: the request line first, unless the head came in pieces.
  const raw = (err as NodeJS.ErrnoException & { rawPacket?: Buffer }).rawPacket;
  const start = raw === undefined ? '' : raw.toString('latin1', 0, Math.min(raw.length, 16 * 1024));
  const [status, code] = refusalOf(err, start);
  // The answer to a HEAD has no body whatever its headers say: a client would read ours as garbage.
  const body = start.startsWith('HEAD ') ? '' : JSON.stringify({ error: { code, message: http.STATUS_CODES[status], field: null } });
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    () => socket.destroy(),
  );
  // A peer that never reads must not keep the socket.
  setTimeout(() => socket.destroy(), 1000).unref();
  return status;
}
