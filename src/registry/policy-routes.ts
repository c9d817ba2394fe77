import type express from 'express';
import type { Request, RequestHandler } from 'express';
import type { Policies } from './policies';
import { blockView, globalMaintenanceView, toolPolicyView } from './policy-views';

export interface PolicyRouteGuards {
  /** Admin only. */
  admin: RequestHandler;
  /** The admin or a token of the tool named by the `tool` path parameter. */
  ofTool: RequestHandler;
  /** JSON bodies: content type checked, then parsed. */
  body: RequestHandler[];
  /** The `tool` path parameter, validated (a 400 naming `tool` when it is no tool name). */
  tool(req: Request): string;
}

/** Path parameters are single segments on these routes; express's type also allows wildcard arrays. */
function id(req: Request): string {
  return String(req.params.id);
}

/** The policy routes of the registration API (docs/openapi.json, tag "policies"), on the API's own router. */
export function addPolicyRoutes(router: express.Router, policies: Policies, g: PolicyRouteGuards): void {
  router.get('/v1/blocks', g.admin, async (_req, res) => {
    res.json({ blocks: (await policies.listBlocks()).map(blockView) });
  });
  router.put('/v1/blocks/:id', g.admin, ...g.body, async (req, res) => {
    res.json(blockView(await policies.putBlock(id(req), req.body)));
  });
  router.get('/v1/blocks/:id', g.admin, async (req, res) => {
    res.json(blockView(await policies.getBlock(id(req))));
  });
  router.delete('/v1/blocks/:id', g.admin, async (req, res) => {
    await policies.removeBlock(id(req));
    res.status(204).end();
  });

  router.put('/v1/tools/:tool/policy', g.ofTool, ...g.body, async (req, res) => {
    res.json(toolPolicyView(await policies.putToolPolicy(g.tool(req), req.body)));
  });
  router.get('/v1/tools/:tool/policy', g.ofTool, async (req, res) => {
    res.json(toolPolicyView(await policies.getToolPolicy(g.tool(req))));
  });
  router.delete('/v1/tools/:tool/policy', g.ofTool, async (req, res) => {
    await policies.removeToolPolicy(g.tool(req));
    res.status(204).end();
  });

  router.put('/v1/maintenance', g.admin, ...g.body, async (req, res) => {
    res.json(globalMaintenanceView(await policies.putMaintenance(req.body)));
  });
  router.get('/v1/maintenance', g.admin, async (_req, res) => {
    res.json(globalMaintenanceView(await policies.getMaintenance()));
  });
  router.delete('/v1/maintenance', g.admin, async (_req, res) => {
    await policies.removeMaintenance();
    res.status(204).end();
  });
}
