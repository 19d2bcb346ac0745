// What the coverage-guided targets share: the built @oidc2/core (its CommonJS build, which the
// engine's require hook instruments), and the rule that the code under test fails only with a coded
// error. A target throws on anything else; the engine records that input as a crash.
const { join } = require('node:path');

const DIST = join(__dirname, '..', '..', 'packages', 'core', 'dist', 'cjs');
/** A module of the built @oidc2/core, e.g. `core('rfc9421/signature-base.js')`: only the modules under test, so that the
 * coverage the engine counts is theirs (and their references'). */
const core = (path) => require(join(DIST, path));
const { isOidc2Error } = core('errors.js');

/** What a parser may throw: an Oidc2Error with a code, or a TypeError ERR_INVALID_ARG_* for programmer errors. */
function isCodedError(error) {
  if (isOidc2Error(error)) return typeof error.code === 'string' && error.status >= 400 && error.status < 600;
  return error instanceof TypeError && typeof error.code === 'string' && error.code.startsWith('ERR_INVALID_ARG_');
}

/** Runs `fn`; returns `{ value }` or `{ code }` of a coded error, and rethrows anything else. */
function coded(fn) {
  try {
    return { value: fn() };
  } catch (error) {
    if (!isCodedError(error)) throw error;
    return { code: error.code };
  }
}

/** Fails the input: the engine writes it to fuzz/crashes/. */
function finding(message, detail) {
  throw new Error(`${message}: ${JSON.stringify(detail)}`);
}

module.exports = { core, coded, finding };
