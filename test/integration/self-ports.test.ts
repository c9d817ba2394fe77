import assert from 'node:assert/strict';
import { startInProcess, api } from '../status/helpers';

// Ports picked by the kernel (port 0 in the config) are known only after listening; a backend URL that
// points at switchboard's own ports would loop requests through the proxy forever.
describe('backend URLs pointing at switchboard itself', () => {
  it('are refused for the control and proxy ports the kernel picked', async () => {
    const sb = await startInProcess({ proxy: true, registry: true });
    try {
      for (const port of [sb.controlPort, sb.proxyPort ?? 0]) {
        const r = await api(sb.control, 'PUT', '/v1/tools/loop/backends/b1', { url: `http://127.0.0.1:${port}` });
        assert.equal(r.status, 400, `port ${port}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.field, 'url');
      }
      assert.equal((await api(sb.control, 'GET', '/v1/tools/loop')).status, 404, 'nothing was stored');
    } finally {
      await sb.stop();
    }
  });
});
