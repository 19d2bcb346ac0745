// oidc2 inspect: what an ICT, WIT or Txn-Token says, and with a trust config whether the core's
// verifiers accept it. The token itself is never printed, only what it decodes to.
import { ICT_TYPES, TXN_TOKEN_TYPE, WIT_TYPE, WPT_TYPE, createIctVerifier, createWitVerifier, isOidc2Error, jwkThumbprint, parsePublicJwk, type TrustedIssuer, type WimseTrustDomain } from '@oidc2/core';
import { base64url, type JWK } from 'jose';
import { EXIT, UsageError, note, print, printJson, stringOption, table, type Command } from '../lib/command.js';
import { inlineOrFile, readJsonObject } from '../lib/files.js';

type Kind = 'ict' | 'wit' | 'wpt' | 'txn-token' | 'jwt';

const KIND_NAMES: Record<Kind, string> = { ict: 'ICT', wit: 'WIT', wpt: 'WPT', 'txn-token': 'Txn-Token', jwt: 'JWT (unknown typ)' };
const TRUST_KEYS = ['issuers', 'trustDomains'];
const TIME_CLAIMS = ['iat', 'nbf', 'exp'] as const;

interface Trust {
  issuers?: TrustedIssuer[];
  trustDomains?: WimseTrustDomain[];
}

export const inspectCommand: Command = {
  path: ['inspect'],
  summary: 'decode an ICT, WIT or Txn-Token, and verify it against a trust config',
  help: `Usage: oidc2 inspect <token | @file | -> [--trust <file>] [--json]

Decodes a compact JWT (an ICT, a WIMSE WIT or WPT, a Txn-Token; the kind is read from typ) and
prints its header, claims, times (iat, nbf, exp, lifetime) and the RFC 7638 thumbprint of its
confirmation key (cnf). The token itself is never printed. Without --trust nothing is verified.

With --trust, an ICT is verified with createIctVerifier and a WIT with createWitVerifier of
@oidc2/core: signature, issuer, times, lifetime and cnf, as a service would. The trust config is a
JSON object:

  {
    "issuers": [{ "issuer": "https://op.example.com", "jwks": { "keys": [ ... ] } }],
    "trustDomains": [{ "trustDomain": "example.com", "jwks": { "keys": [ ... ] } }]
  }

"issuers" are TrustedIssuer entries (for ICTs), "trustDomains" WimseTrustDomain entries (for
WITs); either may be left out. Keys given as jwksUri, or by discovery, are fetched.

Options:
  --trust <file>   verify against this trust config
  --json           one JSON object on stdout: kind, header, claims, times, cnf, verification
  -h, --help       this help

Exit codes: 0 decoded (and, with --trust, verified), 1 not a JWT or not verified (the code is
printed), 2 usage (also: --trust for a token kind it cannot verify).`,
  options: { trust: { type: 'string' }, json: { type: 'boolean' } },
  positionals: [1, 1],
  async run(values, [argument]) {
    const token = (await inlineOrFile(argument === '-' ? '@-' : argument!, 'token file')).toString('utf8').trim();
    const trustFile = stringOption(values, 'trust');
    const trust = trustFile === undefined ? undefined : readTrust(trustFile);
    const json = values.json === true;

    const decoded = decode(token);
    if (!decoded) {
      const error = { code: 'token_malformed', message: 'not a compact JWT (three base64url parts, JSON header and claims)' };
      if (json) printJson({ error });
      else note(`oidc2 inspect: ${error.code}: ${error.message}`);
      return EXIT.failure;
    }
    const { header, claims } = decoded;
    const kind = kindOf(header.typ);
    const now = Date.now() / 1000;
    const times = timesOf(claims, now);
    const cnf = await confirmationOf(claims.cnf);
    const verification = trust === undefined ? undefined : await verify(kind, token, trust);

    if (json) {
      printJson({ kind, header, claims, times, cnf: cnf ?? null, ...(verification ? { verification } : {}) });
    } else {
      const rows: Array<[string, string]> = [
        ['kind', typeof header.typ === 'string' ? `${KIND_NAMES[kind]} (typ ${header.typ})` : KIND_NAMES[kind]],
        ['header', JSON.stringify(header)],
        ['claims', JSON.stringify(claims, null, 2)],
      ];
      for (const name of TIME_CLAIMS) if (times[name] !== undefined) rows.push([name, `${times[name]} (${relative((claims[name] as number) - now)})`]);
      if (times.lifetime !== undefined) rows.push(['lifetime', `${times.lifetime}s`]);
      if (times.expired !== undefined) rows.push(['expired', times.expired ? 'yes' : 'no']);
      if (cnf) rows.push(['cnf', `${cnf.member} thumbprint (RFC 7638, SHA-256) ${cnf.thumbprint}`]);
      if (verification) {
        rows.push([
          'verified',
          verification.verified ? `yes: ${verification.subject}${verification.issuer ? ` from ${verification.issuer}` : ''}` : `no: ${verification.code}: ${verification.message}`,
        ]);
      }
      print(table(rows));
    }
    return verification && !verification.verified ? EXIT.failure : EXIT.ok;
  },
};

function readTrust(path: string): Trust {
  const config = readJsonObject(path, '--trust file');
  const unknown = Object.keys(config).find((key) => !TRUST_KEYS.includes(key));
  if (unknown !== undefined) throw new UsageError(`--trust file ${path} has an unknown member "${unknown}" (allowed: ${TRUST_KEYS.join(', ')})`);
  for (const key of TRUST_KEYS) {
    if (config[key] !== undefined && !Array.isArray(config[key])) throw new UsageError(`--trust file ${path}: "${key}" must be an array`);
  }
  return config as Trust;
}

function decode(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const json = (part: string): Record<string, unknown> | undefined => {
    try {
      const value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(base64url.decode(part))) as unknown;
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };
  const header = json(parts[0]!);
  const claims = json(parts[1]!);
  return header && claims ? { header, claims } : undefined;
}

function kindOf(typ: unknown): Kind {
  const t = typeof typ === 'string' ? typ.toLowerCase() : '';
  if ((ICT_TYPES as readonly string[]).includes(t)) return 'ict';
  if (t === WIT_TYPE) return 'wit';
  if (t === WPT_TYPE) return 'wpt';
  if (t === TXN_TOKEN_TYPE) return 'txn-token';
  return 'jwt';
}

function relative(seconds: number): string {
  const s = Math.round(Math.abs(seconds));
  const text = s >= 86400 ? `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h` : s >= 3600 ? `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
  return seconds >= 0 ? `in ${text}` : `${text} ago`;
}

/** `iat`, `nbf` and `exp` as dates, the lifetime in seconds and whether `exp` has passed. */
function timesOf(claims: Record<string, unknown>, now: number) {
  const times: { iat?: string; nbf?: string; exp?: string; lifetime?: number; expired?: boolean } = {};
  for (const name of TIME_CLAIMS) {
    const value = claims[name];
    if (typeof value === 'number' && Math.abs(value) < 8.64e12) times[name] = new Date(value * 1000).toISOString();
  }
  const { iat, exp } = claims;
  if (typeof iat === 'number' && typeof exp === 'number') times.lifetime = exp - iat;
  if (typeof exp === 'number') times.expired = exp <= now;
  return times;
}

/** The confirmation key's thumbprint: computed from `cnf.jwk`, or `cnf.jkt` as given. */
async function confirmationOf(cnf: unknown): Promise<{ member: 'jwk' | 'jkt'; thumbprint: string } | undefined> {
  if (typeof cnf !== 'object' || cnf === null) return undefined;
  const { jwk, jkt } = cnf as { jwk?: unknown; jkt?: unknown };
  const key = parsePublicJwk(jwk);
  if (key) return { member: 'jwk', thumbprint: await jwkThumbprint(key as JWK) };
  if (typeof jkt === 'string') return { member: 'jkt', thumbprint: jkt };
  return undefined;
}

type Verification = { verified: true; issuer?: string; subject: string; contexts?: string[] } | { verified: false; code: string; message: string };

async function verify(kind: Kind, token: string, trust: Trust): Promise<Verification> {
  if (kind !== 'ict' && kind !== 'wit') throw new UsageError(`--trust verifies ICTs and WITs; this token is a ${KIND_NAMES[kind]}`);
  const configured = kind === 'ict' ? trust.issuers : trust.trustDomains;
  if (!configured || configured.length === 0) throw new UsageError(`the --trust file lists no ${kind === 'ict' ? 'issuers (for ICTs)' : 'trustDomains (for WITs)'}`);
  try {
    if (kind === 'ict') {
      const ict = await createIctVerifier({ issuers: trust.issuers!, cacheSize: 0 }).verify(token, { allowJkt: true });
      return { verified: true, issuer: ict.issuer, subject: ict.subject, contexts: ict.contexts };
    }
    const wit = await createWitVerifier({ trustDomains: trust.trustDomains!, cacheSize: 0 }).verify(token);
    return { verified: true, subject: wit.subject };
  } catch (error) {
    if (isOidc2Error(error)) return { verified: false, code: error.code, message: error.message };
    throw error;
  }
}
