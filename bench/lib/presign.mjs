// Pre-signed oidc2 requests for the load generators: each has its own nonce and a `created` close
// to the run's start, with a window (300 s, the profile's maximum) that covers the run.
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
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

/** Per-request fields of bench/presigned-body.lua's format; every other field is the same for all. */
const PER_REQUEST = ['signature-input', 'signature', 'content-digest'];

/** Canonical capitalisation for a field name (wrk and autocannon send names as given). */
const display = (name) => name.replace(/(^|-)([a-z])/g, (_, dash, c) => dash + c.toUpperCase());

/**
 * Writes `count` requests made by `make()` (each { method, url, headers, body }, signed, with a
 * body) to `file` in the format bench/presigned-body.lua and autocannon-load.mjs read. Fields
 * other than the signature and digest must be the same in every request (the ICT, the session
 * token, the content type and coding). Written as it goes, so a large batch is never held whole.
 */
export async function writePresignedBodies(make, count, file) {
  const fd = openSync(file, 'w');
  try {
    let fixed;
    for (let i = 0; i < count; i++) {
      const req = await make();
      if (fixed === undefined) {
        fixed = Object.entries(req.headers).filter(([name]) => !PER_REQUEST.includes(name) && name !== 'host' && name !== 'content-length');
        const head = [`${req.method} ${req.url}`, ...fixed.map(([name, v]) => `${display(name)}: ${v.join(', ')}`), ''];
        writeSync(fd, `${head.join('\n')}\n`);
      }
      const [input, signature, digest] = PER_REQUEST.map((name) => req.headers[name]);
      if (input?.length !== 1 || signature?.length !== 1 || digest?.length !== 1) throw new Error('expected one signature and one digest per request');
      writeSync(fd, `${req.body.length}\t${input[0]}\t${signature[0]}\t${digest[0]}\n`);
      writeSync(fd, req.body);
    }
  } finally {
    closeSync(fd);
  }
}

/** Reads a file written by {@link writePresignedBodies}: { method, path, headers, requests: [{ headers, body }] }. */
export function readPresignedBodies(file) {
  const bytes = readFileSync(file);
  let at = 0;
  const line = () => {
    const end = bytes.indexOf(0x0a, at);
    if (end < 0) return undefined;
    const text = bytes.subarray(at, end).toString('utf8');
    at = end + 1;
    return text;
  };
  const [method, path] = line().split(' ');
  const headers = {};
  for (let l = line(); l; l = line()) {
    const colon = l.indexOf(': ');
    headers[l.slice(0, colon)] = l.slice(colon + 2);
  }
  const requests = [];
  for (let l = line(); l !== undefined; l = line()) {
    const [len, input, signature, digest] = l.split('\t');
    const body = bytes.subarray(at, at + Number(len));
    at += Number(len);
    requests.push({ headers: { 'Signature-Input': input, Signature: signature, 'Content-Digest': digest }, body });
  }
  return { method, path, headers, requests };
}
