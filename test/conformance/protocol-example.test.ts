// docs/protocol.md's worked example, recomputed: Ed25519 is deterministic, so the ICT, the signature
// base and the signature printed there must come out byte for byte, and the request must authenticate.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAuthenticator, createContentDigest, type HttpRequest } from '@oidc2/core';
import { importKey, sign } from '../../packages/core/src/lib/crypto';
import { encodeBase64Url, utf8 } from '../../packages/core/src/lib/base64';
import { signMessage } from '../../packages/core/src/rfc9421/index';
import example from '../fixtures/protocol-example.json';

const doc = readFileSync(join(__dirname, '../../docs/protocol.md'), 'utf8');

/** The fenced block that follows `<!-- example:NAME -->` in docs/protocol.md. */
function block(name: string): string {
  const m = new RegExp(`<!-- example:${name} -->\\s*\`\`\`[a-z]*\\n([\\s\\S]*?)\\n\`\`\``).exec(doc);
  if (!m) throw new Error(`docs/protocol.md has no example block ${name}`);
  return m[1]!;
}

export async function buildExample() {
  const { d: _d, kid, ...issuerPublic } = example.issuerKey;
  const { d: _c, ...callerPublic } = example.callerKey;
  const header = { alg: 'Ed25519', kid, typ: 'ict+jwt' };
  const claims = {
    iss: example.issuer,
    sub: 'alice@example.com',
    iat: example.created - 60,
    exp: example.created + 3540,
    ctx: ['mfa'],
    cnf: { jwk: { ...callerPublic, alg: 'Ed25519' } },
  };
  const input = `${encodeBase64Url(utf8(JSON.stringify(header)))}.${encodeBase64Url(utf8(JSON.stringify(claims)))}`;
  const issuerSigner = await importKey(example.issuerKey, 'Ed25519', 'sign');
  const ict = `${input}.${encodeBase64Url(await sign(issuerSigner, utf8(input)))}`;

  const body = utf8('{"item":"book","qty":1}');
  const headers: HttpRequest['headers'] = {
    host: ['api.example.com'],
    'content-type': ['application/json'],
    'content-digest': [await createContentDigest(body)],
    'identity-certification-token': [ict],
  };
  const request: HttpRequest = { method: 'POST', url: '/orders?id=7', headers, body };
  const signed = await signMessage(request, {
    label: 'sig',
    components: ['@method', '@path', '@query', 'identity-certification-token', 'content-type', 'content-digest'],
    params: { created: example.created, expires: example.created + 60, nonce: example.nonce, tag: 'oidc2-ict', 'oidc2-aud': `${example.audience}/orders`, 'oidc2-sign-response': true },
    key: await importKey(example.callerKey, 'Ed25519', 'sign'),
  });
  return { issuerPublic: { ...issuerPublic, kid }, callerPublic, header, claims, ict, request, signed };
}

describe('docs/protocol.md worked example', () => {
  it('prints the ICT, signature base and fields this implementation computes', async () => {
    const ex = await buildExample();
    if (process.env.PRINT_EXAMPLE) {
      console.log([ex.ict, ex.signed.base, ex.signed.signatureInput, ex.signed.signature, ex.request.headers['content-digest']![0]].join('\n\n'));
    }
    expect(block('ict')).toBe(ex.ict);
    expect(block('signature-base')).toBe(ex.signed.base);
    expect(block('request')).toContain(`Content-Digest: ${ex.request.headers['content-digest']![0]}`);
    expect(block('request')).toContain(`Signature-Input: ${ex.signed.signatureInput}`);
    expect(block('request')).toContain(`Signature: ${ex.signed.signature}`);
    expect(block('request')).toContain(`Identity-Certification-Token: ${ex.ict}`);
  });

  it('authenticates at the printed time', async () => {
    const ex = await buildExample();
    const auth = createAuthenticator({
      issuers: [{ issuer: example.issuer, jwks: { keys: [ex.issuerPublic] } }],
      audiences: [example.audience],
      now: () => example.created + 5,
    });
    const headers = { ...ex.request.headers, 'signature-input': [ex.signed.signatureInput], signature: [ex.signed.signature] };
    await expect(auth.authenticate({ ...ex.request, headers })).resolves.toMatchObject({ subject: 'alice@example.com', contexts: ['mfa'] });
  });
});
