import { clientDefaults } from '../client/defaults';
import { parseFlags, usageError } from '../client/flags';
import { RegistryClient, type BlockView } from '../client/registry-client';
import { tokenFrom } from '../client/token-source';

const ACTIONS = ['add', 'list', 'remove'] as const;

/** One ban as a line: id, what it matches, its scope and expiry, its reason. */
function line(b: BlockView): string {
  const what = b.cidr !== undefined ? `cidr ${b.cidr}` : `user-agent /${b.userAgent ?? ''}/`;
  const scope = b.tool ? `tool ${b.tool}` : 'every tool';
  const until = b.expiresAt ? `until ${b.expiresAt}` : 'until removed';
  return [b.id, what, scope, until, b.reason ? JSON.stringify(b.reason) : ''].filter(Boolean).join('  ');
}

/** `switchboard block add|list|remove`: bans through the registry's API (admin token). */
export async function blockCommand(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (!ACTIONS.includes(action as (typeof ACTIONS)[number])) throw usageError('block: expected "add", "list" or "remove"');
  const { values } = parseFlags(
    {
      args: rest,
      options: {
        id: { type: 'string' },
        cidr: { type: 'string' },
        'user-agent': { type: 'string' },
        tool: { type: 'string' },
        ttl: { type: 'string' },
        reason: { type: 'string' },
        json: { type: 'boolean' },
        registry: { type: 'string' },
        token: { type: 'string' },
        'token-file': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    },
    { id: 'ID', cidr: 'CIDR', 'user-agent': 'REGEX', tool: 'T', ttl: 'S', reason: 'TEXT', registry: 'URL', token: 'ADMIN', 'token-file': 'PATH' },
  );
  const defaults = clientDefaults();
  const token = tokenFrom(values, defaults.token);
  if (!token) throw usageError('--token-file PATH (or SWITCHBOARD_ADMIN_TOKEN, or --token) is required');
  const client = new RegistryClient({ registry: values.registry ?? defaults.registry, token });
  if (action === 'list') {
    const { blocks } = await client.listBlocks();
    process.stdout.write(values.json ? `${JSON.stringify({ blocks })}\n` : blocks.map((b) => `${line(b)}\n`).join(''));
    return 0;
  }
  if (!values.id) throw usageError('--id is required');
  if (action === 'remove') {
    await client.removeBlock(values.id);
    return 0;
  }
  const body: Record<string, unknown> = {};
  if (values.cidr !== undefined) body.cidr = values.cidr;
  if (values['user-agent'] !== undefined) body.userAgent = values['user-agent'];
  if (values.tool !== undefined) body.tool = values.tool;
  if (values.reason !== undefined) body.reason = values.reason;
  if (values.ttl !== undefined) {
    if (!/^\d{1,9}$/.test(values.ttl)) throw usageError('--ttl must be a whole number of seconds');
    body.ttl = Number(values.ttl);
  }
  const stored = await client.putBlock(values.id, body);
  process.stdout.write(values.json ? `${JSON.stringify(stored)}\n` : `${line(stored)}\n`);
  return 0;
}
