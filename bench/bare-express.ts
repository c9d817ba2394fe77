// The baseline for bench/registry.ts: express with the same JSON body parser and nothing else.
import express from 'express';

const app = express();
app.get('/healthz', (_req, res) => res.json({ ok: true }));
app.put('/v1/tools/:tool/backends/:id', express.json({ limit: '16kb' }), (req, res) => {
  res.json({ tool: req.params.tool, id: req.params.id, ...req.body });
});
app.listen(Number(process.env.PORT), '127.0.0.1');
