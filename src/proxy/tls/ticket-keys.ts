import { readFileSync } from 'node:fs';

/** What Node's TLS server seals session tickets with: 16 bytes of key name, 16 of HMAC secret, 16 of AES key. */
export const TICKET_KEY_BYTES = 48;

/** A ticket-key file that cannot be used, with the reason in the setting's terms. */
export class RefusedTicketKeys extends Error {}

/**
 * The session-ticket keys in `file` (proxy.tls.ticketKeyFile): exactly TICKET_KEY_BYTES raw bytes, as
 * `openssl rand 48` writes them. Proxies that read the same file open each other's tickets, so a client
 * resumes its TLS session on whichever of them takes its next connection.
 */
export function readTicketKeys(file: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new RefusedTicketKeys(`proxy.tls.ticketKeyFile: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (bytes.length !== TICKET_KEY_BYTES) {
    throw new RefusedTicketKeys(
      `proxy.tls.ticketKeyFile: must hold exactly ${TICKET_KEY_BYTES} bytes (make it with: openssl rand ${TICKET_KEY_BYTES} > ${file}), got ${bytes.length}`,
    );
  }
  return bytes;
}
