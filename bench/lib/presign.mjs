// Pre-signed oidc2 requests for the load generators: each has its own nonce and a `created` close
// to the run's start, with a window (300 s, the profile's maximum) that covers the run.
import { writeFileSync } from 'node:fs';
import { AUDIENCE, ROUTE } from './credentials.mjs';

/** A caller able to sign requests: its ICT and signing key handle. */
export function signer(core, ict, key) {
  const host = new URL(AUDIENCE).host;
  return {
    ict,
    /** One signed GET /hello as the core's client side produces it. */
    sign: () => core.signRequest({ method: 'GET', url: AUDIENCE + ROUTE, headers: { host } }, { ict, key, expiresIn: 300 }),
  };
}

/**
 * Writes `count` signed requests to `file` in the format bench/presigned.lua and
 * autocannon-load.mjs read: the ICT, then "<Signature-Input>\t<Signature>" per line.
 */
export async function writePresigned(caller, count, file) {
  const lines = [caller.ict];
  for (let i = 0; i < count; i++) {
    const { headers } = await caller.sign();
    if (headers['signature-input'].length !== 1 || headers.signature.length !== 1) throw new Error('expected one signature per request');
    lines.push(`${headers['signature-input'][0]}\t${headers.signature[0]}`);
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}
