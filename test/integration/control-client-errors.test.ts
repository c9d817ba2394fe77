import assert from 'node:assert/strict';
import net from 'node:net';
import { startInProcess } from '../status/helpers';

function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let out = '';
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('close', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy());
  });
}

describe('control port: requests the HTTP parser refuses', () => {
  let sb: Awaited<ReturnType<typeof startInProcess>>;
  before(async () => {
    sb = await startInProcess({ proxy: false, registry: true });
  });
  after(() => sb.stop());

  it('answer with the JSON error body, not an empty 400', async () => {
    const bad = await raw(sb.controlPort, 'GET /v1/tools HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
    assert.match(bad, /^HTTP\/1\.1 400 /);
    assert.deepEqual(JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4)).error.code, 'bad_request');
    const big = await raw(sb.controlPort, `GET /v1/tools HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431 /);
    assert.equal(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4)).error.code, 'headers_too_large');
  });

  it('a HEAD request gets a 400 without a body (a HEAD answer never has one)', async () => {
    const r = await raw(sb.controlPort, 'HEAD /v1/tools/\u00ff HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(r, /^HTTP\/1\.1 400 /);
    assert.equal(r.slice(r.indexOf('\r\n\r\n') + 4), '');
  });
});
