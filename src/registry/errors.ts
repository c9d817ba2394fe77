/**
 * A refusal the API answers as {"error":{"code","message","field"}}. The registry throws these for bad
 * input and for states the caller must act on (conflict, exhausted range), so the reconciler and the
 * HTTP layer see the same reasons.
 */
export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toJSON(): { error: { code: string; message: string; field: string | null } } {
    return { error: { code: this.code, message: this.message, field: this.field } };
  }
}

export function badRequest(code: string, message: string, field: string | null): RegistryError {
  return new RegistryError(400, code, message, field);
}
