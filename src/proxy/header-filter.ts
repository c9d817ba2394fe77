import type http from 'node:http';
import { CLIENT_CLAIMS, foldsOntoOurs } from './header-names';

/**
 * Removes, in one pass over the request's header names, those no backend gets from this peer:
 * - a name with `_`: CGI and WSGI servers fold `X_Forwarded_For` into the variable `X-Forwarded-For` goes to,
 *   so the client's value would sit beside or over the proxy's. Dropped as nginx does by default;
 *   proxy.allowUnderscoreHeaders passes them, but never one that folds onto a name the proxy sets or strips;
 * - a client's claims about itself (CLIENT_CLAIMS) when the peer is not a trusted proxy.
 * One walk over the names the request has, rather than a lookup of every name it might have.
 */
export function dropForbiddenNames(h: http.IncomingHttpHeaders, trusted: boolean, allowUnderscore: boolean): void {
  for (const name in h) {
    if (name.includes('_')) {
      if (!allowUnderscore || foldsOntoOurs(name)) delete h[name];
    } else if (!trusted && CLIENT_CLAIMS.has(name)) {
      delete h[name];
    }
  }
}
