// One regression test per finding of the hostile-input review (docs/security.md, "Review"): each
// sends the hostile request over a real socket to Express, Fastify and Koa and asserts the status
// and code every adapter must answer with.
import { createContentDigest, createWpt, fieldLines, normalizeFields, parseSignatureInput, signRequest } from '@oidc2/core';
import { createClient } from '@oidc2/client';
import { codeOf } from '../support/error-code';
import { closeAll, FRAMEWORKS, handSigned, newParties, send, serviceOptions, startAll, type Framework, type Parties, type WireResponse } from './support';
import type { FrameworkService } from '../support/frameworks';
import { newTrustDomain, type TestTrustDomain } from '../../packages/core/test/support/wit';
import { newKey, type TestKey } from '../support/credentials';

let parties: Parties;
let domain: TestTrustDomain;
let workload: TestKey;
let wit: string;
let mallory: TestKey;
let malloryIct: string;
let services: Record<Framework, FrameworkService>;
beforeAll(async () => {
  parties = await newParties();
  domain = await newTrustDomain('workloads.review.example');
  workload = await newKey('ES256');
  wit = await domain.mint(workload, { lifetime: 3000 });
  mallory = await newKey('ES256');
  malloryIct = await parties.callers.mint(mallory, { subject: 'mallory', lifetime: 3000 });
  services = await startAll(serviceOptions(parties, { workloads: { trustDomains: [{ trustDomain: domain.trustDomain, jwks: domain.jwks }] } }));
});
afterAll(() => closeAll(services));

const outcome = (r: WireResponse) => ({ status: r.status, code: r.code });
const BODY = '{"a":1}';

describe.each(FRAMEWORKS)('%s', (framework) => {
  const origin = () => services[framework].url;

  describe('a key named twice in a signed Structured Field, of which the parser keeps only the last', () => {
    it('the same request without the repetition is served', async () => {
      expect(outcome(await send(origin(), await handSigned(parties, origin(), { body: BODY })))).toEqual({ status: 200, code: undefined });
    });

    it('Content-Digest naming sha-256 twice, the first wrong: 400 request_malformed (was 200: only the last was compared)', async () => {
      const right = await createContentDigest(new TextEncoder().encode(BODY));
      const request = await handSigned(parties, origin(), { body: BODY, contentDigest: `sha-256=:${Buffer.alloc(32).toString('base64')}:, ${right}` });
      expect(outcome(await send(origin(), request))).toEqual({ status: 400, code: 'request_malformed' });
    });

    it('a Signature-Input parameter repeated after signing: 400 request_malformed (was 200)', async () => {
      const request = await handSigned(parties, origin(), { body: BODY, rewriteInput: (input, { created }) => `${input};created=${created}` });
      expect(outcome(await send(origin(), request))).toEqual({ status: 400, code: 'request_malformed' });
    });

    it('a second Signature-Input member under the signed label: 400 request_malformed (was 200)', async () => {
      const request = await handSigned(parties, origin(), { body: BODY, rewriteInput: (input) => `sig=("@method");created=1, ${input}` });
      expect(outcome(await send(origin(), request))).toEqual({ status: 400, code: 'request_malformed' });
    });
  });

  describe('a Txn-Token on two field lines at a service that does not verify Txn-Tokens', () => {
    const wptRequest = async (txnLines: string[]) => {
      const wpt = await createWpt({ wit, key: workload.signer, audience: `${origin()}/whoami` });
      const lines: Array<[string, string]> = [['authorization', `WPT ${wpt}`], ['workload-identity-token', wit], ...txnLines.map((l) => ['txn-token', l] as [string, string])];
      return send(origin(), { method: 'GET', target: '/whoami', lines });
    };

    it('without a Txn-Token the WPT is accepted; one the WPT does not bind is wpt_invalid', async () => {
      expect(outcome(await wptRequest([]))).toEqual({ status: 200, code: undefined });
      expect(outcome(await wptRequest(['a.b.c']))).toEqual({ status: 400, code: 'wpt_invalid' });
    });

    it('two lines, neither bound by tth: 400 request_malformed (was 200: the tth check looked only at a single line)', async () => {
      expect(outcome(await wptRequest(['a.b.c', 'd.e.f']))).toEqual({ status: 400, code: 'request_malformed' });
    });

    it('two lines beside an HTTP signature that covers both: 400 request_malformed too, as for every token field (was 200)', async () => {
      const request = await handSigned(parties, origin(), { method: 'GET', target: '/whoami', headers: { 'txn-token': ['a.b.c', 'd.e.f'] } });
      expect(outcome(await send(origin(), request))).toEqual({ status: 400, code: 'request_malformed' });
    });
  });

  describe('a response signed for another caller that reused this request nonce', () => {
    // A proxy on the way holds alice's request back and sends, with alice's nonce (readable in her
    // Signature-Input), a request of its own signed with mallory's trusted ICT; the service answers
    // mallory and binds the answer to that nonce, and the proxy hands it to alice.
    const substituting = (): typeof fetch => async (input, init) => {
      const sent = normalizeFields(init?.headers as Record<string, string>);
      const nonce = [...parseSignatureInput(fieldLines(sent, 'signature-input')).values()][0]!.params.nonce!;
      const own = await signRequest({ method: init?.method ?? 'GET', url: String(input) }, { ict: malloryIct, key: mallory.signer, nonce });
      return fetch(String(input), { method: own.method, headers: Object.entries(own.headers).flatMap(([n, ls]) => ls.map((l) => [n, l] as [string, string])) });
    };
    const client = (fetchImpl: typeof fetch) =>
      createClient({
        serviceIssuers: [{ issuer: parties.services.issuer, jwks: parties.services.jwks }],
        expectedService: 'service',
        getIct: (jwk) => parties.callers.mint(jwk, { subject: 'alice' }),
        fetch: fetchImpl,
      });

    it('an honest exchange verifies', async () => {
      const response = await client(fetch)(`${origin()}/whoami`);
      expect(await response.json()).toMatchObject({ framework, caller: 'alice' });
    });

    it('the client refuses the substituted answer: response_signature_invalid (was accepted, showing mallory as the caller)', async () => {
      expect(await codeOf(() => client(substituting())(`${origin()}/whoami`))).toBe('response_signature_invalid');
    });
  });
});
