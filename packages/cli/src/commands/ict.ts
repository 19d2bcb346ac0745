// oidc2 ict mint: an ICT signed with a local issuer key, for development and tests. In production
// ICTs come from an issuer (@oidc2/issuer) that authenticated the holder first.
import { randomBytes } from 'node:crypto';
import { ICT_TYPES } from '@oidc2/core';
import { SignJWT, importJWK } from 'jose';
import { EXIT, UsageError, integerOption, printJson, print, requiredOption, stringOption, type Command } from '../lib/command.js';
import { readPrivateKey, readPublicKey } from '../lib/keys.js';

/** Longest lifetime accepted: an hour, the default `maxTokenAge` of every oidc2 verifier. */
const MAX_LIFETIME = 3600;
/** Context names as the issuer accepts them. */
const CONTEXT_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

export const ictMint: Command = {
  path: ['ict', 'mint'],
  summary: 'mint a development ICT certifying a holder key (development and tests only)',
  help: `Usage: oidc2 ict mint --issuer-key <file> --iss <issuer> --sub <subject> --holder-key <file>
                     [--ctx <c1,c2>] [--aud <audience>] [--lifetime 300] [--typ ict+jwt] [--json]

For development and tests only. Signs an Identity Certification Token with a local issuer key:
iss, sub, iat, nbf, exp, jti, cnf.jwk (the holder's public key, with its alg) and ctx. Nobody
authenticated the holder: in production, ICTs come from an issuer (@oidc2/issuer). A verifier
accepts these ICTs when its trusted issuers list --iss with the issuer key's public JWK.

The ICT is printed on stdout: it is a credential, keep it out of logs.

Options:
  --issuer-key <file>  the issuer's private key (JWK, or PKCS#8 PEM); kid is taken from the JWK
  --iss <issuer>       the iss claim, e.g. https://op.dev.example
  --sub <subject>      the sub claim, e.g. alice or spiffe://dev.example/orders
  --holder-key <file>  the holder's key (JWK or PEM; only its public part is used)
  --ctx <list>         authentication contexts, comma-separated, e.g. mfa,payments
  --aud <audience>     an aud claim (oidc2 issuers set the holder's client id); default none
  --lifetime <s>       seconds until exp, 1 to 3600 (default 300)
  --typ <typ>          the typ header: ict+jwt (default), application/ict+jwt or jwt+ict
  --json               {"token", "header", "claims"} on stdout
  -h, --help           this help

Example:
  oidc2 ict mint --issuer-key dev-issuer.jwk --iss https://op.dev.example --sub alice \\
    --holder-key caller.pub.jwk --ctx mfa > caller.ict`,
  options: {
    'issuer-key': { type: 'string' },
    iss: { type: 'string' },
    sub: { type: 'string' },
    'holder-key': { type: 'string' },
    ctx: { type: 'string' },
    aud: { type: 'string' },
    lifetime: { type: 'string' },
    typ: { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: [0, 0],
  async run(values) {
    const issuerKeyFile = requiredOption(values, 'issuer-key');
    const iss = requiredOption(values, 'iss');
    const sub = requiredOption(values, 'sub');
    const holderKeyFile = requiredOption(values, 'holder-key');
    const lifetime = integerOption(values, 'lifetime', 300, 1, MAX_LIFETIME);
    const typ = stringOption(values, 'typ', 'ict+jwt')!;
    if (!(ICT_TYPES as readonly string[]).includes(typ.toLowerCase())) throw new UsageError(`--typ must be one of ${ICT_TYPES.join(', ')}`);
    const aud = stringOption(values, 'aud');
    if (aud === '') throw new UsageError('--aud must not be empty');
    const contexts = (stringOption(values, 'ctx') ?? '').split(',').map((c) => c.trim()).filter((c) => c.length > 0);
    const badContext = contexts.find((c) => !CONTEXT_NAME.test(c));
    if (badContext !== undefined) throw new UsageError('--ctx names must be 1 to 64 of A-Z a-z 0-9 _ . : -');

    const issuerKey = readPrivateKey(issuerKeyFile, '--issuer-key file');
    const holder = readPublicKey(holderKeyFile, '--holder-key file');
    const signingKey = await importJWK(issuerKey.jwk, issuerKey.alg).catch(() => {
      throw new UsageError(`--issuer-key file ${issuerKeyFile} cannot sign with ${issuerKey.alg}`);
    });
    const header = { alg: issuerKey.alg, typ, ...(typeof issuerKey.jwk.kid === 'string' ? { kid: issuerKey.jwk.kid } : {}) };
    const iat = Math.floor(Date.now() / 1000);
    const claims = {
      iss,
      sub,
      ...(aud !== undefined ? { aud } : {}),
      iat,
      nbf: iat,
      exp: iat + lifetime,
      jti: randomBytes(16).toString('base64url'),
      cnf: { jwk: holder },
      ctx: contexts,
    };
    const token = await new SignJWT(claims).setProtectedHeader(header).sign(signingKey);
    if (values.json === true) printJson({ token, header, claims });
    else print(token);
    return EXIT.ok;
  },
};
