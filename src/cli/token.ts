import { parseArgs } from 'node:util';
import { clientDefaults } from '../client/defaults';
import { RegistryClient } from '../client/registry-client';

/** `switchboard token issue|revoke`: tool tokens through the registry's API (admin token). */
export async function tokenCommand(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: { tool: { type: 'string' }, id: { type: 'string' }, registry: { type: 'string' }, token: { type: 'string' } },
    strict: true,
  });
  const defaults = clientDefaults();
  const token = values.token ?? defaults.token;
  if (!values.tool) throw Object.assign(new Error('--tool is required'), { code: 'ERR_PARSE_ARGS_USAGE' });
  if (!token) throw Object.assign(new Error('--token (or SWITCHBOARD_ADMIN_TOKEN) is required'), { code: 'ERR_PARSE_ARGS_USAGE' });
  const client = new RegistryClient({ registry: values.registry ?? defaults.registry, token });
  if (action === 'issue') {
    const issued = await client.issueToken(values.tool);
    process.stdout.write(`${JSON.stringify(issued)}\n`);
    return 0;
  }
  if (action === 'revoke') {
    if (!values.id) throw Object.assign(new Error('--id is required'), { code: 'ERR_PARSE_ARGS_USAGE' });
    await client.revokeToken(values.tool, values.id);
    return 0;
  }
  throw Object.assign(new Error('token: expected "issue" or "revoke"'), { code: 'ERR_PARSE_ARGS_USAGE' });
}
