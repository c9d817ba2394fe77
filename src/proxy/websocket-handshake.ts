import { createHash } from 'node:crypto';
import type http from 'node:http';

// The WebSocket opening handshake (RFC 6455 4): what the proxy checks before it joins two sockets. Without
// these checks an `Upgrade: websocket` answered by a bare 101 becomes a raw tunnel to the backend, through
// which a client sends requests the proxy never sees (nor rewrites their X-Forwarded-*, nor logs).

/** RFC 6455 1.3: what a server appends to the client's key before hashing it. */
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** A Sec-WebSocket-Key: 16 bytes in base64 (RFC 6455 4.1), as the `ws` server checks it. */
const KEY = /^[A-Za-z0-9+/]{22}==$/;

function isWebSocketToken(value: string | string[] | undefined): boolean {
  return typeof value === 'string' && value.trim().toLowerCase() === 'websocket';
}

/** A client's opening handshake: GET, `Upgrade: websocket` and a well-formed Sec-WebSocket-Key. */
export function isWebSocketHandshake(req: http.IncomingMessage): boolean {
  const key = req.headers['sec-websocket-key'];
  return req.method === 'GET' && isWebSocketToken(req.headers.upgrade) && typeof key === 'string' && KEY.test(key);
}

/** The Sec-WebSocket-Accept a server answers to `key` with. */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/**
 * Whether a backend's 101 completes the client's handshake (RFC 6455 4.2.2): `Upgrade: websocket` and the
 * Sec-WebSocket-Accept of the client's key. Anything else is not a WebSocket server speaking.
 */
export function acceptsHandshake(req: http.IncomingMessage, answer: http.IncomingMessage): boolean {
  const key = req.headers['sec-websocket-key'];
  const accept = answer.headers['sec-websocket-accept'];
  return typeof key === 'string' && typeof accept === 'string' && isWebSocketToken(answer.headers.upgrade) && accept.trim() === acceptFor(key);
}
