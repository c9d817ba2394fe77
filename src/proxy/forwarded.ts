/** A Host value that may stand in a quoted-string as it is: host name or address, and a port. */
const HOST = /^[A-Za-z0-9.:[\]-]{1,255}$/;

/**
 * This hop's element of the Forwarded header (RFC 7239): the client's address (an IPv6 one bracketed and
 * quoted, 6.1), the Host it asked for and the protocol it came over. A Host that could not stand in a
 * quoted-string is left out rather than escaped: backends parse this header loosely.
 */
export function forwardedElement(peer: string, host: string | undefined, proto: string): string {
  // The peer is a socket's address: a colon in it makes it an IPv6 one (net.isIPv6 would run its
  // full-grammar pattern on every request to learn the same).
  const client = peer === '' ? 'for=unknown' : peer.includes(':') ? `for="[${peer}]"` : `for=${peer}`;
  return host !== undefined && HOST.test(host) ? `${client};host="${host}";proto=${proto}` : `${client};proto=${proto}`;
}
