import assert from 'node:assert/strict';
import { StaticRoutes, assignment, backend, request, startProxy, tableOf, testConfig, type TestProxy } from './helpers';

describe('proxy.landingPage', () => {
  const held = { ...backend('stopped', 's1', 'http://127.0.0.1:9'), held: true as const };
  const routes = new StaticRoutes(
    tableOf([backend('web', 'w1', 'http://127.0.0.1:9'), backend('<b>', 'x1', 'http://127.0.0.1:9'), backend('api', 'a1', 'http://127.0.0.1:9'), held], [assignment('idle', 20001)]),
  );
  let on: TestProxy;
  let off: TestProxy;
  before(async () => {
    on = await startProxy(routes, testConfig({ landingPage: true }));
    off = await startProxy(routes, testConfig());
  });
  after(async () => {
    await on.close();
    await off.close();
  });

  it('lists the tools with a live backend, each a link, as HTML and JSON', async () => {
    const html = await request(on.port, '/');
    assert.equal(html.status, 200);
    assert.match(String(html.headers['content-type']), /^text\/html/);
    assert.match(html.body, /<a href="\/api\/">api<\/a>.*<a href="\/web\/">web<\/a>/);
    assert.ok(!html.body.includes('<b>'), 'names are escaped');
    assert.ok(!html.body.includes('stopped') && !html.body.includes('idle'), 'no tool without a live backend');
    const json = await request(on.port, '/', { headers: { accept: 'application/json' } });
    assert.deepEqual(JSON.parse(json.body).tools.map((t: { name: string }) => t.name).filter((n: string) => n !== '<b>'), ['api', 'web']);
    assert.deepEqual(JSON.parse(json.body).tools.find((t: { name: string }) => t.name === 'web'), { name: 'web', url: '/web/' });
  });

  it('is off by default, and never answers anything but GET or HEAD of /', async () => {
    assert.equal((await request(off.port, '/')).status, 404);
    assert.equal((await request(on.port, '/', { method: 'POST' })).status, 404);
    assert.equal((await request(on.port, '/nope/')).status, 404);
    const head = await request(on.port, '/', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });
});
