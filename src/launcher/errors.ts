import { RegistryHttpError } from '../client/registry-client';

/** The fields a log line needs to say why a registry call failed, without anything the request carried. */
export function failureFields(err: unknown): Record<string, unknown> {
  if (err instanceof RegistryHttpError) return { status: err.status, code: err.code, err: err.message, field: err.field ?? undefined };
  const e = err as Error & { cause?: { code?: string; message?: string } };
  // fetch hides the socket error (ECONNREFUSED, ECONNRESET) in `cause`; it is the useful part.
  return { code: e?.cause?.code ?? e?.name, err: e?.cause?.message ?? e?.message ?? String(err) };
}
