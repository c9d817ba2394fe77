import { clientDefaults } from '../client/defaults';
import { parseFlags, usageError } from '../client/flags';
import { RegistryClient } from '../client/registry-client';
import { tokenFrom } from '../client/token-source';

/** `switchboard token issue|revoke`: tool tokens through the registry's API (admin token). */
export async function tokenCommand(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== 'issue' && action !== 'revoke') throw usageError('token: expected "issue" or "revoke"');
  const { values } = parseFlags(
    {
      args: rest,
      options: { tool: { type: 'string' }, id: { type: 'string' }, registry: { type: 'string' }, token: { type: 'string' }, 'token-file': { type: 'string' } },
      strict: true,
      allowPositionals: false,
    },
    { tool: 'T', id: 'ID', registry: 'URL', token: 'ADMIN', 'token-file': 'PATH' },
  );
  const defaults = clientDefaults();
  if (!values.tool) throw usageError('--tool is required');
  const token = tokenFrom(values, defaults.token);
  if (!token) throw usageError('--token-file PATH (or SWITCHBOARD_ADMIN_TOKEN, or --token) is required');
  const client = new RegistryClient({ registry: values.registry ?? defaults.registry, token });
  if (action === 'issue') {
    const issued = await client.issueToken(values.tool);
    process.stdout.write(`${JSON.stringify(issued)}\n`);
    return 0;
  }
  if (!values.id) throw usageError('--id is required');
  await client.revokeToken(values.tool, values.id);
  return 0;
}
