// Attacks of the hostile-input review that were already refused, kept as probes so they stay
// refused: each sends the hostile request over a real socket to Express, Fastify and Koa, which
// must all answer with the same status and code.
import { SignJWT } from 'jose';
import { createDpopProof } from '@oidc2/core';
import { createClient } from '@oidc2/client';
import { codeOf } from '../support/error-code';
import { FRAMEWORKS, handSigned, send, signedWire, startedForFile, type WireResponse } from './support';
import { ROUTE_POLICIES } from '../support/frameworks';

const started = startedForFile();

const outcome = (r: WireResponse) => ({ status: r.status, code: r.code });
const now = () => Math.floor(Date.now() / 1000);

describe.each(FRAMEWORKS)('%s', (framework) => {
  const origin = () => started.services[framework].url;

  it('a replay of a served request, to the same route or another, is refused', async () => {
    const request = await signedWire(started.parties, 'GET', `${origin()}/whoami`);
    expect(outcome(await send(origin(), request))).toEqual({ status: 200, code: undefined });
    expect(outcome(await send(origin(), request))).toEqual({ status: 401, code: 'replay_detected' });
    const fresh = await signedWire(started.parties, 'GET', `${origin()}/whoami`);
    expect(outcome(await send(origin(), { ...fresh, target: '/clear' }))).toEqual({ status: 401, code: 'signature_invalid' });
    expect(outcome(await send(origin(), { ...fresh, method: 'DELETE' }))).toEqual({ status: 401, code: 'signature_invalid' });
  });

  it('created beyond the clock skew is signature_not_yet_valid; no expires is signature_params_invalid', async () => {
    const future = await signedWire(started.parties, 'GET', `${origin()}/whoami`, { options: { now: () => now() + 120 } });
    expect(outcome(await send(origin(), future))).toEqual({ status: 401, code: 'signature_not_yet_valid' });
    const unbounded = await handSigned(started.parties, origin(), { method: 'GET', target: '/whoami', rewriteInput: (input) => input.replace(/;expires=\d+/, '') });
    expect(outcome(await send(origin(), unbounded))).toEqual({ status: 401, code: 'signature_params_invalid' });
  });

  it('a body changed after signing, or a field added the signature must cover, is refused', async () => {
    const request = await handSigned(started.parties, origin(), { body: '{"amount":1}' });
    expect(outcome(await send(origin(), { ...request, body: new TextEncoder().encode('{"amount":9}') }))).toEqual({ status: 401, code: 'digest_mismatch' });
    const added = await handSigned(started.parties, origin(), { method: 'GET', target: '/whoami' });
    added.lines.push(['txn-token', 'a.b.c']);
    expect(outcome(await send(origin(), added))).toEqual({ status: 401, code: 'component_not_covered' });
  });

  it('ICT alg and typ confusion: HS256 is refused before any key, a WIT-typed token of the trusted issuer is not an ICT', async () => {
    const claims = { iss: started.parties.callers.issuer, sub: 'alice', cnf: { jwk: started.parties.alice.publicJwk } };
    const hs256 = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'ict+jwt', kid: started.parties.callers.kid }).setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(JSON.stringify(started.parties.callers.jwks.keys[0])));
    const asHs256 = await handSigned(started.parties, origin(), { method: 'GET', target: '/whoami', headers: { 'identity-certification-token': [hs256] } });
    expect(outcome(await send(origin(), asHs256))).toEqual({ status: 401, code: 'ict_alg_not_allowed' });
    const witTyped = await started.parties.callers.mint(started.parties.alice, { typ: 'wit+jwt' });
    const asWit = await handSigned(started.parties, origin(), { method: 'GET', target: '/whoami', headers: { 'identity-certification-token': [witTyped] } });
    expect(outcome(await send(origin(), asWit))).toEqual({ status: 401, code: 'ict_typ_invalid' });
  });

  it('the token field twice under names that differ only in case is request_malformed, and no token is echoed', async () => {
    const request = await signedWire(started.parties, 'GET', `${origin()}/whoami`);
    request.lines.push(['IDENTITY-CERTIFICATION-TOKEN', started.parties.aliceIct]);
    const response = await send(origin(), request);
    expect(outcome(response)).toEqual({ status: 400, code: 'request_malformed' });
    expect(Buffer.from(response.body).toString('utf8')).not.toContain(started.parties.aliceIct.split('.')[1]);
  });

  it('a route that requires end-to-end encryption refuses a plaintext request: 401 e2ee_required', async () => {
    expect(ROUTE_POLICIES.secret).toEqual({ encryption: 'required' });
    const request = await handSigned(started.parties, origin(), { target: '/secret', body: '{"a":1}' });
    const response = await send(origin(), request);
    expect(outcome(response)).toEqual({ status: 401, code: 'e2ee_required' });
    expect(response.headers['www-authenticate']?.join(', ')).toContain('error="e2ee_required"');
  });

  it('a DPoP proof is bound to its method and URI and spent once', async () => {
    const dpop = async (method: string, target: string, proofTarget = target) => ({
      method,
      target,
      lines: [
        ['authorization', `DPoP ${started.parties.aliceIct}`],
        ['dpop', await createDpopProof({ method, url: `${origin()}${proofTarget}`, key: started.parties.alice.signer, jwk: started.parties.alice.publicJwk, accessToken: started.parties.aliceIct })],
      ] as Array<[string, string]>,
    });
    const request = await dpop('GET', '/whoami');
    expect(outcome(await send(origin(), request))).toEqual({ status: 200, code: undefined });
    expect(outcome(await send(origin(), request))).toEqual({ status: 401, code: 'replay_detected' });
    expect(outcome(await send(origin(), await dpop('GET', '/clear', '/whoami')))).toEqual({ status: 401, code: 'dpop_invalid' });
    expect(outcome(await send(origin(), { ...(await dpop('GET', '/whoami')), method: 'DELETE' }))).toEqual({ status: 401, code: 'dpop_invalid' });
  });

  describe('the client, against a proxy that changes the answer', () => {
    // Passes the request on unchanged and hands back the answer as `change` makes it.
    const proxy = (change: (headers: Headers, status: number) => { headers: Headers; status: number }): typeof fetch => async (input, init) => {
      const real = await fetch(input, init);
      const changed = change(new Headers(real.headers), real.status);
      return new Response(await real.arrayBuffer(), changed);
    };
    const client = (fetchImpl: typeof fetch) =>
      createClient({ serviceIssuers: [{ issuer: started.parties.services.issuer, jwks: started.parties.services.jwks }], expectedService: 'service', getIct: (jwk) => started.parties.callers.mint(jwk), fetch: fetchImpl });

    it('a stripped signature is response_unsigned; a changed status or content type is response_signature_invalid', async () => {
      const strip = proxy((headers, status) => {
        headers.delete('signature');
        headers.delete('signature-input');
        return { headers, status };
      });
      expect(await codeOf(() => client(strip)(`${origin()}/whoami`))).toBe('response_unsigned');
      expect(await codeOf(() => client(proxy((headers) => ({ headers, status: 201 })))(`${origin()}/whoami`))).toBe('response_signature_invalid');
      const retyped = proxy((headers, status) => {
        headers.set('content-type', 'text/html');
        return { headers, status };
      });
      expect(await codeOf(() => client(retyped)(`${origin()}/whoami`))).toBe('response_signature_invalid');
    });
  });
});
