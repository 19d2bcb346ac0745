// RFC 9421 section 2.2.5 on real sockets: a request line in absolute form (`POST http://host/path
// HTTP/1.1`, as a client sends to a forward proxy) has `@request-target` = the absolute URI, and every
// adapter tells the core so; origin-form keeps its origin-form value.
import { createContentDigest, createNonce, signMessage, type HttpRequest } from '@oidc2/core';
import { closeAll, FRAMEWORKS, json, linesOf, newParties, send, serviceOptions, signedWire, startAll, type Framework, type Parties } from './support';
import type { FrameworkService } from '../support/frameworks';

let parties: Parties;
let services: Record<Framework, FrameworkService>;
beforeAll(async () => {
  parties = await newParties();
  services = await startAll(serviceOptions(parties));
});
afterAll(() => closeAll(services));

const COMPONENTS = ['@method', '@path', '@query', '@request-target', 'identity-certification-token', 'content-type', 'content-digest'];

/** POST {"n":1} to `origin/echo`, signed over `@request-target` as `absoluteForm` says the request line carries it. */
async function signedOver(origin: string, absoluteForm: boolean): Promise<HttpRequest> {
  const body = new TextEncoder().encode('{"n":1}');
  const url = `${origin}/echo`;
  const headers = {
    'identity-certification-token': [parties.aliceIct],
    'content-type': ['application/json'],
    'content-digest': [await createContentDigest(body)],
  };
  const message: HttpRequest = { method: 'POST', url, absoluteForm, headers, body };
  const created = Math.floor(Date.now() / 1000);
  const params = { created, expires: created + 60, nonce: createNonce(), tag: 'oidc2-ict', 'oidc2-aud': url };
  const signed = await signMessage(message, { label: 'sig', components: COMPONENTS, params, key: parties.alice.signer });
  return { ...message, headers: { ...headers, 'signature-input': [signed.signatureInput], signature: [signed.signature] } };
}

describe.each(FRAMEWORKS)('@request-target in absolute form on %s', (framework) => {
  it('a signature over the absolute URI verifies when the request line carries it', async () => {
    const origin = services[framework].url;
    const request = await signedOver(origin, true);
    const response = await send(origin, { method: 'POST', target: `${origin}/echo`, lines: linesOf(request.headers), body: request.body });
    expect({ status: response.status, code: response.code }).toEqual({ status: 200, code: undefined });
    expect(json(response)).toMatchObject({ framework, caller: 'alice', echo: { n: 1 } });
  });

  it('a signature over the origin-form is signature_invalid when the request line carried the absolute URI', async () => {
    const origin = services[framework].url;
    const request = await signedOver(origin, false);
    const response = await send(origin, { method: 'POST', target: `${origin}/echo`, lines: linesOf(request.headers), body: request.body });
    expect({ status: response.status, code: response.code }).toEqual({ status: 401, code: 'signature_invalid' });
  });

  it('origin-form is unchanged: a signature over it verifies, one over the absolute URI does not', async () => {
    const origin = services[framework].url;
    const plain = await signedWire(parties, 'GET', `${origin}/whoami`, { options: { components: ['@request-target'] } });
    expect((await send(origin, plain)).status).toBe(200);
    const request = await signedOver(origin, true);
    const response = await send(origin, { method: 'POST', target: '/echo', lines: linesOf(request.headers), body: request.body });
    expect({ status: response.status, code: response.code }).toEqual({ status: 401, code: 'signature_invalid' });
  });
});
