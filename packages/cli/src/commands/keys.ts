// oidc2 keys generate: a signing key pair for a caller, a service or a development issuer.
import { EXIT, UsageError, choiceOption, note, print, printJson, stringOption, type Command } from '../lib/command.js';
import { PUBLIC_FILE_MODE, SECRET_FILE_MODE, writeOutputFile } from '../lib/files.js';
import { KEY_ALGORITHMS, generateKey } from '../lib/keys.js';

export const keysGenerate: Command = {
  path: ['keys', 'generate'],
  summary: 'generate a signing key pair (private JWK or PEM, public JWK)',
  help: `Usage: oidc2 keys generate [--alg ES256|Ed25519|ES384|PS256] [--format jwk|pem] [--kid <kid>]
                          [--out <file>] [--public-out <file>] [--force] [--json]

Generates a signing key pair. The private key is written to --out (created with mode 0600) or
to stdout; the public key, always a JWK, to --public-out or to stdout. Both JWKs carry kid, alg
and use "sig". Notes about written files go to stderr.

Options:
  --alg <alg>          ES256 (default), Ed25519, ES384 or PS256 (RSA, 2048 bits). Callers using
                       'oidc2 fetch' or @oidc2/client need ES256 or Ed25519.
  --format <format>    the private key as a JWK (default) or a PKCS#8 PEM
  --kid <kid>          key id; default the RFC 7638 thumbprint of the public key
  --out <file>         write the private key here (mode 0600) instead of stdout
  --public-out <file>  write the public JWK here instead of stdout
  --force              overwrite existing files (an existing --out file gets mode 0600 first)
  --json               one JSON object on stdout: alg, kid, thumbprint and the keys not written
                       to files
  -h, --help           this help

With neither --out nor --public-out and no --json, stdout holds two documents: the private key,
then the public JWK.

Examples:
  oidc2 keys generate --out caller.jwk --public-out caller.pub.jwk
  oidc2 keys generate --alg Ed25519 --format pem --out service.pem > service.pub.jwk`,
  options: {
    alg: { type: 'string' },
    format: { type: 'string' },
    kid: { type: 'string' },
    out: { type: 'string' },
    'public-out': { type: 'string' },
    force: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  positionals: [0, 0],
  async run(values) {
    const alg = choiceOption(values, 'alg', KEY_ALGORITHMS, 'ES256');
    const format = choiceOption(values, 'format', ['jwk', 'pem'] as const, 'jwk');
    const kid = stringOption(values, 'kid');
    if (kid === '') throw new UsageError('--kid must not be empty');
    const out = stringOption(values, 'out');
    const publicOut = stringOption(values, 'public-out');
    const force = values.force === true;
    const key = await generateKey(alg, format, kid);
    const privateText = typeof key.privateKey === 'string' ? key.privateKey.trimEnd() : JSON.stringify(key.privateKey, null, 2);
    const publicText = JSON.stringify(key.publicJwk, null, 2);

    if (out !== undefined) {
      writeOutputFile(out, `${privateText}\n`, SECRET_FILE_MODE, force);
      note(`wrote the private key to ${out} (mode 0600)`);
    }
    if (publicOut !== undefined) {
      writeOutputFile(publicOut, `${publicText}\n`, PUBLIC_FILE_MODE, force);
      note(`wrote the public key to ${publicOut}`);
    }
    if (values.json === true) {
      printJson({
        alg: key.alg,
        kid: key.kid,
        thumbprint: key.thumbprint,
        ...(out === undefined ? { privateKey: key.privateKey } : { privateKeyFile: out }),
        ...(publicOut === undefined ? { publicKey: key.publicJwk } : { publicKeyFile: publicOut }),
      });
      return EXIT.ok;
    }
    if (out === undefined) print(privateText);
    if (publicOut === undefined) print(publicText);
    return EXIT.ok;
  },
};
