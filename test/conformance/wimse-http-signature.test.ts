// draft-ietf-wimse-http-signature-07: the editor's-copy request and response (a POST with a body
// and an ES256 responder) verify with this project's RFC 9421 implementation, Content-Digest
// included. The caller's key is the cnf.jwk of its WIT; the responder's key is published.
import { decodeJwt, type JWK } from 'jose';
import { importKey, normalizeFields, parseSignature, parseSignatureInput, verifyContentDigest, verifyMessageSignature, type HttpRequest, type HttpResponse } from '@oidc2/core';
import vector from '../fixtures/wimse-http-signature/a6.json';

const enc = new TextEncoder();
const request: HttpRequest = {
  method: 'POST',
  url: vector.request.startLine.split(' ')[1]!,
  headers: normalizeFields(vector.request.headers as Array<[string, string]>),
  body: enc.encode(vector.request.body),
};
const response: HttpResponse = {
  status: Number(vector.response.startLine.split(' ')[1]),
  headers: normalizeFields(vector.response.headers as Array<[string, string]>),
  body: enc.encode(vector.response.body),
};

function only<T>(map: Map<string, T>): T {
  expect(map.size).toBe(1);
  return [...map.values()][0]!;
}

describe('draft-ietf-wimse-http-signature-07 vectors', () => {
  it('verifies the request signature with the key its WIT certifies', async () => {
    const wit = decodeJwt(request.headers['workload-identity-token']![0]!);
    const jwk = (wit.cnf as { jwk: JWK }).jwk;
    const entry = only(parseSignatureInput(request.headers['signature-input']));
    expect(entry.params).toMatchObject({ tag: 'wimse-workload-to-workload', 'wimse-aud': 'https://svcc.example.com/inventory/cones', 'wimse-sign-response': true });
    const key = await importKey(jwk, 'ed25519', 'verify');
    expect(await verifyMessageSignature(request, entry, only(parseSignature(request.headers.signature)), key)).toBe(true);
    await expect(verifyContentDigest(request.headers['content-digest'], request.body!, { required: true })).resolves.toBeUndefined();
    // The same signature over a changed body digest does not verify.
    const changed = { ...request, headers: { ...request.headers, 'content-digest': ['sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:'] } };
    expect(await verifyMessageSignature(changed, entry, only(parseSignature(request.headers.signature)), key)).toBe(false);
  });

  it('verifies the response signature, bound to the request by ;req components and wimse-req-nonce', async () => {
    const entry = only(parseSignatureInput(response.headers['signature-input']));
    const requestEntry = only(parseSignatureInput(request.headers['signature-input']));
    expect(entry.params['wimse-req-nonce']).toBe(requestEntry.params.nonce);
    const { d: _d, ...svcC } = vector.svcC;
    const key = await importKey(svcC, 'ecdsa-p256-sha256', 'verify');
    const signature = only(parseSignature(response.headers.signature));
    expect(await verifyMessageSignature(response, entry, signature, key, { request })).toBe(true);
    await expect(verifyContentDigest(response.headers['content-digest'], response.body!, { required: true })).resolves.toBeUndefined();
    // Bound to its request: against another request path it fails.
    expect(await verifyMessageSignature(response, entry, signature, key, { request: { ...request, url: '/inventory/sprinkles' } })).toBe(false);
  });
});
