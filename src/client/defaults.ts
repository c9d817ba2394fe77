import { DEFAULTS } from '../config/schema';

/** Where the CLI and the launcher find the registry, and the token they send, when no flag says. */
export function clientDefaults(env: NodeJS.ProcessEnv = process.env): { registry: string; token: string | undefined } {
  return {
    registry: env.SWITCHBOARD_REGISTRY ?? `http://127.0.0.1:${env.SWITCHBOARD_CONTROL_PORT ?? DEFAULTS.control.port}`,
    token: env.SWITCHBOARD_TOKEN ?? env.SWITCHBOARD_ADMIN_TOKEN,
  };
}
