// What a call settled to, for tests of the workload paths that assert status and reason with the
// code: `code/status`, `code/status:reason` when the problem names one, or 'accepted'.
import { isOidc2Error } from '../../src/errors';

export async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (!isOidc2Error(error)) throw error;
    const reason = error.extensions.reason;
    return `${error.code}/${error.status}${typeof reason === 'string' ? `:${reason}` : ''}`;
  }
  return 'accepted';
}
