import http from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Answers a request Node's parser refused (malformed, headers too large, too slow) with the same JSON error
 * body as every other refusal, instead of Node's empty 400. Returns the status sent, or null when the socket
 * was only closed (the peer is gone, or an answer was already on its way).
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): number | null {
  const pending = (socket as Duplex & { _httpMessage?: http.ServerResponse })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || pending?.headersSent) {
    socket.destroy();
    return null;
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const code = status === 431 ? 'headers_too_large' : status === 408 ? 'request_timeout' : 'bad_request';
  // The answer to a HEAD has no body whatever its headers say: a client would read ours as garbage.
  const raw = (err as NodeJS.ErrnoException & { rawPacket?: Buffer }).rawPacket;
  const head = raw !== undefined && raw.subarray(0, 5).toString('latin1') === 'HEAD ';
  const body = head ? '' : JSON.stringify({ error: { code, message: http.STATUS_CODES[status], field: null } });
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    () => socket.destroy(),
  );
  // A peer that never reads must not keep the socket.
  setTimeout(() => socket.destroy(), 1000).unref();
  return status;
}
