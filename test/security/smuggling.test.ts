import assert from 'node:assert/strict';
import { StaticRoutes, backend, startProxy, tableOf, testConfig, type TestProxy } from '../proxy/helpers';
import { RawBackend, exchange, statusLines } from './raw-backend';
import { waitFor } from '../support/wait';

/**
 * Request smuggling and parsing, byte for byte: raw TCP in front of the proxy, a raw TCP backend behind it
 * that logs what it receives. Each ambiguous request is refused (4xx, nothing forwarded) or normalised
 * (forwarded once with plain framing); none ever reaches the backend as two requests. The smuggled
 * request targets /alpha/... so that, were the proxy to read it as a request of its own, it would be
 * routed and counted.
 */

const SMUGGLED = 'GET /alpha/smuggled HTTP/1.1\r\nHost: x\r\n\r\n';

/** 1,999 tiny headers: under 16 KiB, at Node's default maxHeadersCount with Host. */
const FILLER = Array.from({ length: 1999 }, (_, i) => `X${i}: v\r\n`).join('');

function chunked(body: string): string {
  return `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
}

type Outcome = 'reject' | 'forward' | 'either';

/** The error code of a refusal's page by its status, when not bad_request. */
const ERROR_CODES: Record<number, string> = { 431: 'headers_too_large', 501: 'not_implemented', 505: 'version_not_supported' };

interface Case {
  name: string;
  bytes: string;
  expect: Outcome;
  /** The refusal status when rejected (400 unless said; 431, 501 and 505 have pages of their own). */
  status?: number;
}

function post(headerLines: string[], body: string): string {
  return `POST /alpha/in HTTP/1.1\r\nHost: x\r\n${headerLines.map((l) => `${l}\r\n`).join('')}\r\n${body}`;
}

const CASES: Case[] = [
  // Content-Length with Transfer-Encoding: RFC 9112 6.1 lets a server drop CL; a proxy must not forward both.
  { name: 'CL.TE', bytes: post(['Content-Length: 6', 'Transfer-Encoding: chunked'], `0\r\n\r\n${SMUGGLED}`), expect: 'reject' },
  { name: 'TE.CL', bytes: post(['Transfer-Encoding: chunked', 'Content-Length: 4'], `2c\r\n${SMUGGLED}\r\n0\r\n\r\n`), expect: 'reject' },
  { name: 'CL.TE, CL 0', bytes: post(['Content-Length: 0', 'Transfer-Encoding: chunked'], `0\r\n\r\n${SMUGGLED}`), expect: 'reject' },
  // Obfuscated Transfer-Encoding: either understood as chunked and forwarded plainly, or refused.
  { name: 'TE: chunked, identity', bytes: post(['Transfer-Encoding: chunked, identity', 'Content-Length: 5'], `0\r\n\r\n${SMUGGLED}`), expect: 'reject' },
  { name: 'TE: chunked, identity (alone)', bytes: post(['Transfer-Encoding: chunked, identity'], `0\r\n\r\n${SMUGGLED}`), expect: 'reject' },
  { name: 'TE: identity', bytes: post(['Transfer-Encoding: identity'], `0\r\n\r\n${SMUGGLED}`), expect: 'reject' },
  { name: 'TE: xchunked', bytes: post(['Transfer-Encoding: xchunked'], `0\r\n\r\n${SMUGGLED}`), expect: 'reject' },
  { name: 'TE: chunkedx', bytes: post(['Transfer-Encoding: chunkedx'], `0\r\n\r\n${SMUGGLED}`), expect: 'reject' },
  { name: 'TE: "chunked" quoted', bytes: post(['Transfer-Encoding: "chunked"'], `0\r\n\r\n${SMUGGLED}`), expect: 'reject' },
  { name: 'TE with leading space', bytes: post(['Transfer-Encoding:  chunked', 'Content-Length: 5'], `0\r\n\r\n${SMUGGLED}`), expect: 'reject' },
  { name: 'TE with leading space (alone)', bytes: post(['Transfer-Encoding:  chunked'], `3\r\nabc\r\n0\r\n\r\n`), expect: 'forward' },
  { name: 'TE with tab', bytes: post(['Transfer-Encoding:\tchunked'], `3\r\nabc\r\n0\r\n\r\n`), expect: 'forward' },
  { name: 'TE with trailing tab', bytes: post(['Transfer-Encoding: chunked\t'], `3\r\nabc\r\n0\r\n\r\n`), expect: 'either' },
  { name: 'TE upper case', bytes: post(['Transfer-Encoding: CHUNKED'], `3\r\nabc\r\n0\r\n\r\n`), expect: 'forward' },
  { name: 'TE mixed case name and value', bytes: post(['tRANSFER-eNCODING: ChUnKeD'], `3\r\nabc\r\n0\r\n\r\n`), expect: 'forward' },
  // A transfer coding besides chunked: Node's parser frames it, the proxy does not forward it (RFC 9112 6.1: 501).
  { name: 'TE: gzip, chunked', bytes: post(['Accept: application/json', 'Transfer-Encoding: gzip,  CHUNKED'], `3\r\nabc\r\n0\r\n\r\n`), expect: 'reject', status: 501 },
  { name: 'TE name with space before colon', bytes: post(['Transfer-Encoding : chunked', 'Content-Length: 5'], `0\r\n\r\n${SMUGGLED}`), expect: 'reject' },
  { name: 'TE obs-fold', bytes: post(['Transfer-Encoding:', ' chunked', 'Content-Length: 5'], `0\r\n\r\n${SMUGGLED}`), expect: 'reject' },
  { name: 'TE twice', bytes: post(['Transfer-Encoding: chunked', 'Transfer-Encoding: identity'], `0\r\n\r\n${SMUGGLED}`), expect: 'reject' },
  { name: 'TE twice, both chunked', bytes: post(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], `0\r\n\r\n${SMUGGLED}`), expect: 'reject' },
  { name: 'TE with underscore (another header)', bytes: post(['Transfer_Encoding: chunked', 'Content-Length: 5'], `0\r\n\r\n`), expect: 'either' },
  { name: 'TE in HTTP/1.0', bytes: `POST /alpha/in HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`, expect: 'reject' },
  // Content-Length spellings.
  { name: 'CL twice, same value', bytes: post(['Content-Length: 3', 'Content-Length: 3'], 'abc'), expect: 'either' },
  { name: 'CL twice, different values', bytes: post(['Content-Length: 3', 'Content-Length: 44'], `abc${SMUGGLED}`), expect: 'reject' },
  { name: 'CL list', bytes: post(['Content-Length: 3, 44'], `abc${SMUGGLED}`), expect: 'reject' },
  { name: 'CL list, same values', bytes: post(['Content-Length: 3, 3'], 'abc'), expect: 'either' },
  { name: 'CL with plus sign', bytes: post(['Content-Length: +3'], 'abc'), expect: 'reject' },
  { name: 'CL negative', bytes: post(['Content-Length: -1'], 'abc'), expect: 'reject' },
  { name: 'CL hex', bytes: post(['Content-Length: 0x3'], 'abc'), expect: 'reject' },
  { name: 'CL overflow', bytes: post(['Content-Length: 99999999999999999999999'], 'abc'), expect: 'reject' },
  { name: 'CL with space inside', bytes: post(['Content-Length: 1 0'], 'abc'), expect: 'reject' },
  // Line endings and header syntax.
  { name: 'bare LF everywhere', bytes: `GET /alpha/in HTTP/1.1\nHost: x\n\n${SMUGGLED}`, expect: 'reject' },
  { name: 'bare LF in one header line', bytes: `POST /alpha/in HTTP/1.1\r\nHost: x\nContent-Length: 44\r\n\r\n${SMUGGLED}`, expect: 'reject' },
  { name: 'bare LF ending the head', bytes: `GET /alpha/in HTTP/1.1\r\nHost: x\r\n\n${SMUGGLED}`, expect: 'reject' },
  { name: 'bare CR', bytes: `GET /alpha/in HTTP/1.1\rHost: x\r\n\r\n`, expect: 'reject' },
  { name: 'NUL in a header value', bytes: `GET /alpha/in HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n`, expect: 'reject' },
  { name: 'space in a header name', bytes: `GET /alpha/in HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n`, expect: 'reject' },
  { name: 'header without colon', bytes: `GET /alpha/in HTTP/1.1\r\nHost: x\r\nContent-Length 5\r\n\r\n`, expect: 'reject' },
  { name: 'chunk size garbage', bytes: post(['Transfer-Encoding: chunked'], `zz\r\nabc\r\n0\r\n\r\n`), expect: 'either' },
  { name: 'chunk size overflow', bytes: post(['Transfer-Encoding: chunked'], `fffffffffffffffffff\r\nabc\r\n0\r\n\r\n`), expect: 'either' },
  { name: 'chunk with bare LF', bytes: post(['Transfer-Encoding: chunked'], `3\nabc\n0\n\n${SMUGGLED}`), expect: 'either' },
  { name: 'missing Host in HTTP/1.1', bytes: `GET /alpha/in HTTP/1.1\r\nAccept: application/json\r\n\r\n`, expect: 'reject' },
  { name: 'two Host headers', bytes: `GET /alpha/in HTTP/1.1\r\nHost: x\r\nHost: y\r\nAccept: application/json\r\n\r\n`, expect: 'reject', status: 400 },
  { name: 'two Host headers, same value, other case', bytes: `GET /alpha/in HTTP/1.1\r\nHost: x\r\nhOST: x\r\nAccept: application/json\r\n\r\n`, expect: 'reject', status: 400 },
  { name: 'two Host headers in HTTP/1.0', bytes: `GET /alpha/in HTTP/1.0\r\nHost: x\r\nHost: y\r\nAccept: application/json\r\n\r\n`, expect: 'reject', status: 400 },
  // Request lines of another HTTP than 1.x: Node's parser passes HTTP/2.0 and HTTP/0.9 on to the proxy and
  // refuses the others; 505 either way, nothing forwarded (an HTTP/2.0 line without Host passed as HTTP/1.0 did).
  { name: 'HTTP/2.0 request line', bytes: `GET /alpha/in HTTP/2.0\r\nHost: x\r\nAccept: application/json\r\n\r\n`, expect: 'reject', status: 505 },
  { name: 'HTTP/2.0 request line without Host', bytes: `GET /alpha/in HTTP/2.0\r\nAccept: application/json\r\n\r\n`, expect: 'reject', status: 505 },
  { name: 'HTTP/2.0 request line with a body', bytes: `POST /alpha/in HTTP/2.0\r\nHost: x\r\nAccept: application/json\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`, expect: 'reject', status: 505 },
  { name: 'HTTP/0.9 request line', bytes: `GET /alpha/in HTTP/0.9\r\nAccept: application/json\r\n\r\n`, expect: 'reject', status: 505 },
  { name: 'HTTP/1.2 request line', bytes: `GET /alpha/in HTTP/1.2\r\nHost: x\r\n\r\n`, expect: 'reject', status: 505 },
  { name: 'HTTP/3.0 request line', bytes: `GET /alpha/in HTTP/3.0\r\nHost: x\r\n\r\n`, expect: 'reject', status: 505 },
  { name: 'HTTP/2 request line (no minor)', bytes: `GET /alpha/in HTTP/2\r\nHost: x\r\n\r\n`, expect: 'reject', status: 505 },
  { name: 'HTTP/2 connection preface', bytes: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, expect: 'reject', status: 505 },
  { name: 'HTTP/1.1 with a space after the version', bytes: `GET /alpha/in HTTP/1.1 \r\nHost: x\r\n\r\n`, expect: 'reject' },
  { name: 'HTTP/1.10 request line', bytes: `GET /alpha/in HTTP/1.10\r\nHost: x\r\n\r\n`, expect: 'reject' },
  // A head over Node's 16 KiB limit, in one header, in many, and in the request line.
  { name: 'one header of 20 KiB', bytes: `GET /alpha/in HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`, expect: 'reject', status: 431 },
  { name: '2,000 headers, 40 KiB', bytes: `GET /alpha/in HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 2000 }, (_, i) => `X-Header-${i}: value-${i}\r\n`).join('')}\r\n`, expect: 'reject', status: 431 },
  // Node frames by every header but used to list only the first 2,000 in req.headers: framing past them
  // was obeyed by the proxy's parser and lost on the way to the backend.
  { name: 'TE after 1,999 headers, GET', bytes: `GET /alpha/in HTTP/1.1\r\nHost: x\r\n${FILLER}Transfer-Encoding: chunked\r\n\r\n${chunked(SMUGGLED)}`, expect: 'forward' },
  { name: 'TE after 1,999 headers, DELETE', bytes: `DELETE /alpha/in HTTP/1.1\r\nHost: x\r\n${FILLER}Transfer-Encoding: chunked\r\n\r\n${chunked(SMUGGLED)}`, expect: 'forward' },
  { name: 'CL after 1,999 headers, GET', bytes: `GET /alpha/in HTTP/1.1\r\nHost: x\r\n${FILLER}Content-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`, expect: 'forward' },
  { name: 'request line of 20 KiB', bytes: `GET /alpha/${'a'.repeat(20 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`, expect: 'reject', status: 431 },
];

/** A body that merely looks like a request, with proper framing: one request, the bytes are its body. */
const BODY_ONLY: Case[] = [
  { name: 'a request inside a Content-Length body', bytes: post([`Content-Length: ${SMUGGLED.length}`], SMUGGLED), expect: 'forward' },
  { name: 'a request inside a chunk', bytes: post(['Transfer-Encoding: chunked'], `${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`), expect: 'forward' },
  { name: 'Connection: content-length (must not strip framing)', bytes: post(['Connection: content-length', `Content-Length: ${SMUGGLED.length}`], SMUGGLED), expect: 'forward' },
  { name: 'Connection: transfer-encoding (must not strip framing)', bytes: post(['Connection: transfer-encoding', 'Transfer-Encoding: chunked'], `${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`), expect: 'forward' },
  { name: 'DELETE with a body', bytes: `DELETE /alpha/in HTTP/1.1\r\nHost: x\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`, expect: 'forward' },
  { name: 'chunked DELETE', bytes: `DELETE /alpha/in HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`, expect: 'forward' },
  { name: 'GET with a body', bytes: `GET /alpha/in HTTP/1.1\r\nHost: x\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`, expect: 'forward' },
  { name: 'chunk extensions and trailers', bytes: post(['Transfer-Encoding: chunked'], `3;ext="x\r\n"\r\nabc\r\n0\r\nX-Trailer: ${SMUGGLED.trim()}\r\n\r\n`), expect: 'either' },
  { name: 'Expect: 100-continue', bytes: post(['Expect: 100-continue', `Content-Length: ${SMUGGLED.length}`], SMUGGLED), expect: 'forward' },
];

describe('security: request smuggling and parsing at the proxy', function () {
  this.timeout(20_000);
  let raw: RawBackend;
  let proxy: TestProxy;

  before(async () => {
    raw = await new RawBackend().start();
    proxy = await startProxy(new StaticRoutes(tableOf([backend('alpha', 'a1', raw.url)])), testConfig());
  });

  after(async () => {
    await proxy?.close();
    await raw?.close();
  });

  /**
   * Sends the case's bytes on a fresh connection, then a marker request on another: once the marker has
   * arrived, anything the case caused has arrived before it on the proxy's pooled backend connection (or
   * on one opened earlier). Answers what the client got and what the backend saw besides the marker.
   */
  async function run(c: Case) {
    raw.reset();
    const answer = await exchange(proxy.port, c.bytes);
    const marker = await exchange(proxy.port, 'GET /alpha/marker HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.deepEqual(statusLines(marker.text), [200], `the proxy still serves after "${c.name}"`);
    await waitFor('the marker at the backend', () => raw.requests.some((r) => r.target === '/alpha/marker'), 5000, 10);
    const seen = raw.requests.filter((r) => r.target !== '/alpha/marker');
    return { answer, seen, statuses: statusLines(answer.text).filter((s) => s !== 100) };
  }

  function assertRejected(c: Case, r: Awaited<ReturnType<typeof run>>): void {
    const want = c.status ?? 400;
    assert.deepEqual(r.statuses, [want], `"${c.name}": one ${want} answer, got ${JSON.stringify(r.answer.text.slice(0, 300))}`);
    assert.match(r.answer.text, /\r\nconnection: close\r\n/i, 'the proxy closes a connection it cannot frame');
    const body = r.answer.text.slice(r.answer.text.indexOf('\r\n\r\n') + 4);
    assert.match(r.answer.text, /\r\ncontent-type: application\/json/i, 'the refusal is JSON');
    assert.equal(JSON.parse(body).error.code, ERROR_CODES[want] ?? 'bad_request');
    assert.ok(r.answer.closedByPeer, 'the connection is closed');
    assert.deepEqual(r.seen, [], `"${c.name}" reached the backend: ${raw.bytes().slice(0, 500)}`);
  }

  function assertForwardedOnce(c: Case, r: Awaited<ReturnType<typeof run>>): void {
    assert.equal(r.statuses[0], 200, `"${c.name}": ${r.answer.text.slice(0, 300)}`);
    assert.equal(r.seen.length, 1, `"${c.name}" forwarded as ${r.seen.length} requests: ${raw.bytes().slice(0, 800)}`);
    const [req] = r.seen;
    assert.equal(req.target, '/alpha/in');
    assert.deepEqual(req.anomalies, [], `"${c.name}" forwarded with ambiguous framing: ${raw.bytes().slice(0, 500)}`);
    const framing = req.headers.filter(([n]) => /^(content-length|transfer-encoding)$/i.test(n));
    assert.ok(framing.length <= 1, `one framing header at most: ${JSON.stringify(framing)}`);
  }

  for (const c of [...CASES, ...BODY_ONLY]) {
    it(`${c.name}: ${c.expect === 'either' ? 'refused or forwarded once' : c.expect === 'reject' ? `refused (${c.status ?? 400}), nothing forwarded` : 'forwarded once, plainly framed'}`, async () => {
      const r = await run(c);
      // Whatever the outcome: the smuggled request never arrives as a request of its own.
      assert.ok(!r.seen.some((s) => s.target.includes('smuggled')), `smuggled request forwarded: ${raw.bytes().slice(0, 800)}`);
      assert.deepEqual(raw.garbage, [], 'the backend could frame everything it got');
      if (c.expect === 'reject') return assertRejected(c, r);
      if (c.expect === 'forward') return assertForwardedOnce(c, r);
      if (r.statuses[0] >= 400) assertRejected(c, r);
      else assertForwardedOnce(c, r);
    });
  }

  it('pipelined requests are forwarded as exactly as many requests (the counting works)', async () => {
    raw.reset();
    const two = 'GET /alpha/in HTTP/1.1\r\nHost: x\r\n\r\nGET /alpha/in HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const answer = await exchange(proxy.port, two);
    assert.deepEqual(statusLines(answer.text), [200, 200]);
    await waitFor('two requests at the backend', () => raw.requests.length === 2, 5000, 10);
    assert.deepEqual(raw.requests.map((r) => r.anomalies), [[], []]);
  });

  it('forwards a chunked body past the buffer with the Transfer-Encoding normalised to plain lower-case "chunked"; a small one read whole, with its Content-Length', async () => {
    const framing = (r: Awaited<ReturnType<typeof run>>) =>
      r.seen[0].headers.filter(([n]) => /^(content-length|transfer-encoding)$/i.test(n)).map(([n, v]) => `${n.toLowerCase()}: ${v}`);
    // Past proxy.bufferBodyBytes (64 KiB by default): streamed on as it comes.
    const big = 'b'.repeat(70 * 1024);
    const streamed = await run({ name: 'TE upper case, past the buffer', bytes: post(['Transfer-Encoding: CHUNKED'], chunked(big)), expect: 'forward' });
    assert.equal(streamed.seen.length, 1);
    assert.deepEqual(framing(streamed), ['transfer-encoding: chunked']);
    assert.equal(streamed.seen[0].body.toString(), big);
    // Within it: read whole before forwarding, and sent with the length it turned out to have.
    const whole = await run({ name: 'TE upper case', bytes: post(['Transfer-Encoding: CHUNKED'], chunked('abc')), expect: 'forward' });
    assert.equal(whole.seen.length, 1);
    assert.deepEqual(framing(whole), ['content-length: 3']);
    assert.equal(whole.seen[0].body.toString(), 'abc');
  });

  it('answers 501 to a transfer coding other than chunked ("gzip, chunked"), and nothing reaches the backend', async () => {
    // The forwarder frames bodies as plain chunked only: the coded body cannot be sent on as it came.
    for (const te of ['gzip, chunked', 'gzip, deflate, chunked', 'x-custom , Chunked']) {
      const c: Case = { name: `TE ${te}`, bytes: post(['Accept: application/json', `Transfer-Encoding: ${te}`], `3\r\nabc\r\n0\r\n\r\n`), expect: 'reject', status: 501 };
      assertRejected(c, await run(c));
    }
  });

  it('states its parser limits explicitly (no lenient parser, 16 KiB heads)', () => {
    const s = proxy.proxy.server as unknown as { maxHeaderSize?: number; insecureHTTPParser?: boolean };
    assert.equal(s.maxHeaderSize, 16 * 1024);
    assert.equal(s.insecureHTTPParser, false);
  });
});
