// What a failing call raised, for tests that assert on codes: the Oidc2Error code, 'TypeError' for
// argument errors, undefined when the call did not throw; anything else is rethrown.
import { isOidc2Error } from '../../packages/core/src/errors';

function codeOfError(error: unknown): string {
  if (isOidc2Error(error)) return error.code;
  if (error instanceof TypeError) return 'TypeError';
  throw error;
}

/** The error code an (async) call raises, or undefined when it does not throw. */
export async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
  } catch (error) {
    return codeOfError(error);
  }
  return undefined;
}

/** The error code a synchronous call raises, or undefined when it does not throw. */
export function syncCodeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return codeOfError(error);
  }
  return undefined;
}
