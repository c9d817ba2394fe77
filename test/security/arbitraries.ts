import zlib from 'node:zlib';
import fc from 'fast-check';
import { ADMIN_TOKEN, type Principals } from './support';

/**
 * Generators of hostile requests to the registration API. Everything they produce can be sent by Node's
 * http client (the point is what the server does with it, not what a client library refuses to send).
 */

/** Who the request's credentials make the caller, as the server should see it. */
export type Principal = { kind: 'admin' } | { kind: 'tool'; tool: string } | { kind: 'none' };

export interface AuthCase {
  label: string;
  /** Builds the Authorization header (null: none) from the tokens of this run. */
  header: (p: Principals) => string | null;
  /** Appended to the path: tokens in the URL are never credentials. */
  query: (p: Principals) => string;
  principal: Principal;
}

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  auth: AuthCase;
}

/** Loopback ports registrations may use: few, so the table stays small and conflicts happen. */
export const FUZZ_PORTS = [20001, 20002, 20003];
const TOOLS = ['alpha', 'beta', 'gamma'];
const IDS = ['a1', 'a2', 'b1'];

/** What Node's client may put in a header value: tab, printable ASCII, latin1. */
const headerSafe = (s: string) => s.replace(/[^\t\x20-\x7e\x80-\xff]/g, '');

const none: Principal = { kind: 'none' };
const admin: Principal = { kind: 'admin' };

function auth(label: string, principal: Principal, header: AuthCase['header'], query: AuthCase['query'] = () => ''): AuthCase {
  return { label, principal, header, query };
}

export const authArb: fc.Arbitrary<AuthCase> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(auth('admin', admin, () => `Bearer ${ADMIN_TOKEN}`)) },
  { weight: 4, arbitrary: fc.constant(auth('own', { kind: 'tool', tool: 'alpha' }, (p) => `Bearer ${p.own}`)) },
  { weight: 2, arbitrary: fc.constant(auth('other', { kind: 'tool', tool: 'beta' }, (p) => `Bearer ${p.other}`)) },
  fc.constant(auth('revoked', none, (p) => `Bearer ${p.revoked}`)),
  fc.constant(auth('none', none, () => null)),
  fc.constant(auth('lower-case scheme, spaces', admin, () => `bearer   ${ADMIN_TOKEN}  `)),
  fc.constant(auth('query only', none, () => null, (p) => `?access_token=${ADMIN_TOKEN}&token=${p.own}`)),
  fc.constant(auth('admin in Basic', none, () => `Basic ${Buffer.from(`x:${ADMIN_TOKEN}`).toString('base64')}`)),
  fc.constant(auth('two tokens', none, (p) => `Bearer ${p.own} ${ADMIN_TOKEN}`)),
  fc.constant(auth('tool token, admin tail', none, (p) => `Bearer ${p.own}${ADMIN_TOKEN}`)),
  fc.constant(auth('admin prefix', none, () => `Bearer ${ADMIN_TOKEN.slice(0, -1)}`)),
  fc.constant(auth('admin plus one', none, () => `Bearer ${ADMIN_TOKEN}x`)),
  fc.constant(auth('own id, other secret', none, (p) => `Bearer ${p.own.slice(0, 17)}${p.other.slice(17)}`)),
  fc.constant(auth('own upper-cased', none, (p) => `Bearer ${p.own.toUpperCase()}`)),
  fc.string({ unit: 'binary-ascii', maxLength: 120 }).map((s) => auth('garbage', none, () => headerSafe(s))),
  fc.string({ unit: 'grapheme-ascii', maxLength: 80 }).map((s) => auth('Bearer garbage', none, () => headerSafe(`Bearer ${s}`))),
);

// ---- bodies ----

const SSRF_URLS = [
  'http://169.254.169.254',
  'http://[::ffff:169.254.169.254]',
  'http://[::ffff:a9fe:a9fe]:80',
  'http://2852039166',
  'http://0251.0376.0251.0376',
  'http://0xa9.0xfe.0xa9.0xfe',
  'http://0xa9fea9fe',
  'http://169.254.43518',
  'http://169.254.169.254.',
  'http://%31%36%39.254.169.254',
  'http://[fe80::1]',
  'http://0',
  'http://[::]',
  'http://224.0.0.1',
  'http://8.8.8.8',
  'http://metadata.google.internal',
  'http://localhost.',
  'file:///etc/passwd',
  'gopher://127.0.0.1:20001',
  'http://user:pw@127.0.0.1:20001',
  'http://127.0.0.1:20001/path',
  'http://127.0.0.1:20001?x=1',
  'http://127.0.0.1:20001#f',
  'http://127.0.0.1:0',
  'http://127.0.0.1:65536',
  'http://127.0.0.1:20001\\@169.254.169.254',
  'http://127.0.0.1:20001 ',
  'http:/\t/127.0.0.1:20001',
  'HTTP://127.0.0.1:20001',
  'http://127.1:20002',
  'http://[::1]:20003',
  'https://127.0.0.1:20001/',
];

const okUrl = fc.constantFrom(...FUZZ_PORTS).map((p) => `http://127.0.0.1:${p}`);

const urlArb = fc.oneof(
  { weight: 4, arbitrary: okUrl },
  { weight: 3, arbitrary: fc.constantFrom(...SSRF_URLS) },
  fc.webUrl(),
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.integer({ min: 1, max: 5000 }).map((n) => `http://127.0.0.1:20001/${'a'.repeat(n)}`),
);

/** Values of any JSON type, including the ones a schema must refuse. */
const anyValue = fc.oneof(
  fc.integer({ min: -10, max: 5000 }),
  fc.constantFrom(0, -0, 4, 5, 3600, 3601, 5.5, 1e308, -1, 2 ** 53, Number.MAX_SAFE_INTEGER),
  fc.string({ maxLength: 70 }),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 2 }),
);

const heartbeatObject = fc.record(
  {
    url: fc.oneof({ weight: 5, arbitrary: urlArb }, anyValue),
    ttl: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 5, max: 3600 }) }, anyValue),
    clientVersion: fc.oneof({ weight: 3, arbitrary: fc.stringMatching(/^[\x20-\x7e]{0,70}$/) }, fc.string({ unit: 'grapheme', maxLength: 20 }), anyValue),
    extra: anyValue,
  },
  { requiredKeys: [] },
);

const BODY_LIMIT = 16 * 1024;

export const bodyArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 6, arbitrary: heartbeatObject.map((o) => Buffer.from(JSON.stringify(o))) },
  { weight: 2, arbitrary: fc.json({ maxDepth: 4 }).map((s) => Buffer.from(s)) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)) },
  fc.string({ unit: 'binary', maxLength: 200 }).map((s) => Buffer.from(s)),
  // Around the 16 KiB limit, valid JSON all the way.
  fc.integer({ min: BODY_LIMIT - 80, max: BODY_LIMIT + 80 }).map((n) => {
    const head = '{"url":"http://127.0.0.1:20001","pad":"';
    return Buffer.from(head + 'x'.repeat(Math.max(0, n - head.length - 2)) + '"}');
  }),
  fc.integer({ min: 1, max: 7000 }).map((n) => Buffer.from('['.repeat(n) + ']'.repeat(n))),
  fc.integer({ min: 1, max: 3000 }).map((n) => Buffer.from('{"a":'.repeat(n) + '1' + '}'.repeat(n))),
  fc.constantFrom(
    '',
    ' ',
    'null',
    '[]',
    '"http://127.0.0.1:20001"',
    '{"url":"http://127.0.0.1:20001","url":"http://169.254.169.254"}',
    '{"url":"http://169.254.169.254","url":"http://127.0.0.1:20001"}',
    '{"__proto__":{"url":"http://127.0.0.1:20001"}}',
    '{"constructor":{"prototype":{"polluted":"yes"}},"url":"http://127.0.0.1:20001"}',
    '\ufeff{"url":"http://127.0.0.1:20001"}',
    '{"url":"http://127.0.0.1:20001"} trailing',
    '{"url":"http://127.0.0.1:20001",}',
    "{'url':'http://127.0.0.1:20001'}",
    '{"url":"http://127.0.0.1:20001","ttl":1e400}',
    '{"url":"http://127.0.0.1:20001","ttl":5.0}',
    '{"url":"http:\\/\\/127.0.0.1:20001"}',
    '{"url":"http://127.0.0.1:20001\\u0000"}',
    '{"url":"\\ud800"}',
  ).map((s) => Buffer.from(s)),
  fc.constant(Buffer.from('{"url":"http://127.0.0.1:20001","clientVersion":"\xff\xfe"}', 'latin1')),
  fc.constant(Buffer.from('{"url":"http://127.0.0.1:20001"}', 'utf16le')),
);

export const contentTypeArb: fc.Arbitrary<string | null> = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  fc.constantFrom(
    null,
    '',
    'application/json; charset=utf-8',
    'application/json; charset=UTF-8',
    'application/json;charset=latin1',
    'application/json; charset=utf-16',
    'application/json; charset=nonsense',
    'APPLICATION/JSON',
    'application/json, text/plain',
    'application/merge-patch+json',
    'application/vnd.api+json',
    'text/json',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/octet-stream',
    'application/json; boundary="',
    '*/*',
    'json',
  ),
  fc.string({ unit: 'binary-ascii', maxLength: 60 }).map(headerSafe),
);

/** A body as sent with a Content-Encoding (null: none); sometimes truly encoded, sometimes lying. */
export const encodedBodyArb: fc.Arbitrary<{ body: Buffer; encoding: string | null }> = fc.oneof(
  { weight: 12, arbitrary: bodyArb.map((body) => ({ body, encoding: null })) },
  bodyArb.map((body) => ({ body: zlib.gzipSync(body), encoding: 'gzip' })),
  bodyArb.map((body) => ({ body: zlib.deflateSync(body), encoding: 'deflate' })),
  bodyArb.map((body) => ({ body, encoding: 'gzip' })),
  fc.constantFrom('identity', 'br', 'x-unknown', 'gzip, gzip', 'GZIP').chain((encoding) => bodyArb.map((body) => ({ body, encoding }))),
  // A small gzip that inflates past the body limit.
  fc.constant({ body: zlib.gzipSync(Buffer.from(`{"url":"http://127.0.0.1:20001","p":"${'x'.repeat(1 << 20)}"}`)), encoding: 'gzip' }),
);

// ---- paths ----

const SEGMENT_TRICKS = [
  '.', '..', '%2e', '%2e%2e', '%2E%2E', '.%2e', '%2f', '%2F', 'a%2Fb', 'alpha%2F..%2Fbeta', 'alpha%2f%2e%2e%2fbeta',
  '%00', 'alpha%00', '%', '%zz', '%E0%A4%A', '%C0%AE%C0%AE', '%ff', '%u002e', ';', 'alpha;x=1', 'alpha%20', '%20alpha',
  'ALPHA', 'Alpha', '%61lpha', '%62eta', '~', '@', '%40', '*', '..%00', '%252e%252e', 'alpha.', 'a1.', '.a1', 'a..1',
  '%0d%0aX-Injected:%201', '%C3%A5lpha', 'xn--lpha-4qa', '-alpha', 'alpha-', 'a'.repeat(63), 'a'.repeat(64), 'a1'.repeat(64),
];

const segmentArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...TOOLS, ...IDS, '127.0.0.1', '20001', 'aaaaaaaaaaaa') },
  { weight: 4, arbitrary: fc.constantFrom(...SEGMENT_TRICKS) },
  fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/),
  fc.string({ unit: 'grapheme', maxLength: 10 }).map(encodeURIComponent),
  // Raw latin1 and punctuation, as bytes on the request line.
  fc.string({ unit: fc.integer({ min: 0x21, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 10 }).map((s) =>
    s.replace(/[/?#]/g, '_'),
  ),
  fc.integer({ min: 100, max: 20_000 }).map((n) => 'a'.repeat(n)),
);

const TEMPLATES = [
  '/v1/tools/{s}/backends/{s}',
  '/v1/tools/{s}',
  '/v1/tools',
  '/v1/ports',
  '/v1/ports/{s}/{s}',
  '/v1/tools/{s}/tokens',
  '/v1/tools/{s}/tokens/{s}',
  '/v1/tools/{s}/discoveries',
  '/v1/{s}',
  '/V1/TOOLS/{s}/BACKENDS/{s}',
  '/v1//tools/{s}/backends/{s}',
  '//v1/tools/{s}/backends/{s}',
  '/v1/./tools/{s}/backends/{s}',
  '/v1/tools/{s}/backends/{s}/',
  '/v1/tools/{s}/backends/{s}/{s}',
  '/v1/tools/{s}/../{s}/backends/{s}',
  '/v1/tools/{s}%2Fbackends%2F{s}',
  '/{s}/{s}',
];

const queryArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant('') },
  fc.constantFrom('?', '?tool=beta', '?_method=DELETE', '?url=http://169.254.169.254', '?a=%zz', '?__proto__[x]=1', `?${'q'.repeat(3000)}`),
);

export const pathArb: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(...TEMPLATES), fc.array(segmentArb, { minLength: 3, maxLength: 3 }), queryArb)
  .map(([t, segs, q]) => {
    let i = 0;
    return t.replace(/\{s\}/g, () => segs[i++ % segs.length]) + q;
  });

/** A well-formed heartbeat path for alpha or beta, for the body and header properties. */
export const heartbeatPathArb = fc.tuple(fc.constantFrom('alpha', 'beta'), fc.constantFrom(...IDS)).map(([t, id]) => `/v1/tools/${t}/backends/${id}`);

export const methodArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'PUT', 'POST', 'DELETE') },
  fc.constantFrom('PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'M-SEARCH'),
);

// ---- headers ----

export const extraHeadersArb: fc.Arbitrary<Record<string, string>> = fc
  .array(
    fc.oneof(
      fc.constantFrom<[string, string]>(
        ['x-http-method-override', 'DELETE'],
        ['x-http-method', 'PUT'],
        ['x-original-url', '/v1/tools'],
        ['x-rewrite-url', '/v1/tools/beta/backends/b1'],
        ['x-forwarded-for', '127.0.0.1'],
        ['x-forwarded-host', 'evil.example'],
        ['x-forwarded-proto', 'https'],
        ['x-real-ip', '10.0.0.1'],
        ['forwarded', 'for=127.0.0.1;host=evil'],
        ['accept', 'text/html'],
        ['accept', 'application/json;q=0, */*;q=0.1'],
        ['accept-encoding', 'gzip, br'],
        ['accept-charset', 'utf-16'],
        ['cookie', 'token=x; admin=1'],
        ['expect', '100-continue'],
        ['origin', 'http://evil.example'],
        ['if-none-match', '*'],
        ['range', 'bytes=0-1'],
        ['connection', 'authorization'],
        ['connection', 'close'],
        ['te', 'trailers'],
        ['upgrade', 'websocket'],
        ['host', 'evil.example'],
        ['host', '127.0.0.1:1'],
        ['x-request-id', '../../etc/passwd'],
      ),
      fc.tuple(fc.stringMatching(/^x-[a-z0-9-]{1,20}$/), fc.string({ unit: 'binary-ascii', maxLength: 100 }).map(headerSafe)),
      // Big enough together to cross Node's 16 KiB head limit now and then.
      fc.tuple(fc.constant('x-big'), fc.integer({ min: 1000, max: 20_000 }).map((n) => 'b'.repeat(n))),
    ),
    { maxLength: 6 },
  )
  .map((pairs) => {
    const out: Record<string, string> = {};
    for (const [k, v] of pairs) out[k] = v;
    return out;
  });
