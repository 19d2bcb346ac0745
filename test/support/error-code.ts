// What a failing call raised, for tests that assert on codes: the Oidc2Error code, 'TypeError' for
// argument errors, undefined when the call did not throw; anything else is rethrown.
import { isOidc2Error, type Oidc2Error } from '../../packages/core/src/errors';

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

/** The Oidc2Error a promise rejects with; fails the test when it resolves or rejects otherwise. */
export async function rejection(promise: Promise<unknown>): Promise<Oidc2Error> {
  try {
    await promise;
  } catch (error) {
    if (isOidc2Error(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

/** The Oidc2Error code a promise rejects with, or 'resolved'; anything else is rethrown. */
export async function settledCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isOidc2Error(error)) return error.code;
    throw error;
  }
  return 'resolved';
}
