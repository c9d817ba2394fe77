import { readFileSync } from 'node:fs';
import { ConfigError } from '../../config/errors';

/** What Node's TLS server seals session tickets with: 16 bytes of key name, 16 of HMAC secret, 16 of AES key. */
export const TICKET_KEY_BYTES = 48;

/**
 * The session-ticket keys in `file` (proxy.tls.ticketKeyFile): exactly TICKET_KEY_BYTES raw bytes, as
 * `openssl rand 48` writes them. Proxies that read the same file open each other's tickets, so a client
 * resumes its TLS session on whichever of them takes its next connection.
 */
export function readTicketKeys(file: string): Buffer {
  // A ConfigError, in the setting's terms: at start it stops the process; on SIGHUP it is logged.
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new ConfigError(`proxy.tls.ticketKeyFile: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (bytes.length !== TICKET_KEY_BYTES) {
    throw new ConfigError(
      `proxy.tls.ticketKeyFile: must hold exactly ${TICKET_KEY_BYTES} bytes (make it with: openssl rand ${TICKET_KEY_BYTES} > ${file}), got ${bytes.length}`,
    );
  }
  return bytes;
}
