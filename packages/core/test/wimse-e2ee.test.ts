// End-to-end encryption with a WIMSE workload (docs/protocol.md section 7.8: WIMSE HTTP-signature callers may use it
// like ICT callers): the service answers with its WIT, so id(S) is the WIT's (with an empty iss when
// the WIT has none) and id(C) the caller WIT's. The caller side is built from the core's blocks.
import { createOidc2Service, createWitVerifier, createNonce, fieldLines, signRequest, verifyResponse, type HttpRequest, type Oidc2Options, type SuiteName } from '../src/index';
import {
  completeHandshake,
  decryptBody,
  encryptBody,
  hpkeSuite,
  parseResponseKeyShare,
  parseResponseSession,
  requestKey,
  responseKey,
  serializeRequestKeyShare,
  serializeSession,
  type HpkeKeyPair,
  type PartyIdentity,
} from '../src/adapter';
import { decodeBase64Url, utf8 } from '../src/lib/base64';
import { newKey, type TestKey } from '../../../test/support/credentials';
import { newTrustDomain, type TestTrustDomain } from './support/wit';

const T = 1_790_000_000;
const now = () => T;
const BASE = 'https://inventory.example.com';
const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

async function exchange(svc: ReturnType<typeof createOidc2Service>, request: HttpRequest, answer: string) {
  const head = { method: request.method, url: new URL(request.url).pathname, headers: { ...request.headers } };
  const ex = svc.exchange(head);
  const admission = await ex.admit(request.body);
  if (admission.answered) return { response: { ...admission.response, body: admission.response.body as Uint8Array | undefined }, seen: undefined };
  const sent = await ex.respond({ status: 200, headers: { 'content-type': ['text/plain'] }, body: utf8(answer) });
  return { response: { ...sent, body: sent.body as Uint8Array | undefined }, seen: admission.body as Uint8Array | undefined };
}

describe.each([
  ['with an iss', 'https://wit-issuer.workloads.example'],
  ['without iss', undefined],
])('a WIMSE caller opens an e2ee session (WITs %s)', (_name, issuer) => {
  let td: TestTrustDomain;
  let caller: TestKey;
  let wit: string;
  let svcKey: TestKey;
  let svcWit: string;
  let svc: ReturnType<typeof createOidc2Service>;

  beforeAll(async () => {
    td = await newTrustDomain('workloads.example', issuer === undefined ? {} : { issuer });
    caller = await newKey('ES256');
    wit = await td.mint(caller, { now: T - 10, subject: 'spiffe://workloads.example/billing' });
    svcKey = await newKey('Ed25519');
    svcWit = await td.mint(svcKey, { now: T - 10, subject: 'spiffe://workloads.example/inventory', lifetime: 3600 });
    const options: Oidc2Options = {
      issuers: [{ issuer: 'https://op.example.com', jwksUri: 'https://op.example.com/jwks' }],
      audiences: [BASE],
      now,
      workloads: { trustDomains: [{ trustDomain: td.trustDomain, ...(issuer ? { issuer } : {}), jwks: td.jwks }] },
      credentials: { wit: { wit: svcWit, privateKey: svcKey.privateJwk } },
    };
    svc = createOidc2Service(options);
  });

  it('handshakes, then sends an encrypted body in the session, the service signing with its WIT', async () => {
    const witVerifier = createWitVerifier({ trustDomains: [{ trustDomain: td.trustDomain, jwks: td.jwks }], now });
    const suite: SuiteName = 'x25519';
    const pair: HpkeKeyPair = await hpkeSuite(suite).generateKeyPair();
    const keyShare = serializeRequestKeyShare([{ suite, key: await hpkeSuite(suite).serializePublicKey(pair.publicKey) }]);
    const nonce = createNonce();
    const audience = `${BASE}/orders`;
    const hello = await signRequest({ method: 'GET', url: audience, headers: { 'oidc2-key-share': keyShare } }, { wit, key: caller.signer, nonce, now });
    expect(hello.headers['signature-input']![0]).toContain('"oidc2-key-share"');
    const { response } = await exchange(svc, hello, 'welcome');
    expect(response.status).toBe(200);
    expect(response.headers['workload-identity-token']).toEqual([svcWit]);
    expect(response.headers['signature-input']![0]).toContain('"oidc2-key-share";req');
    const service = await verifyResponse(response, { request: hello, binding: hello.binding, witVerifier, now });
    expect(service.issuer).toBe(issuer ?? '');
    const callerParty: PartyIdentity = { iss: issuer ?? '', sub: 'spiffe://workloads.example/billing', jkt: decodeBase64Url(caller.thumbprint)! };
    const keys = await completeHandshake(parseResponseKeyShare(fieldLines(response.headers, 'oidc2-key-share')!), new Map([[suite, pair]]), {
      keyShare,
      nonce,
      audience,
      caller: callerParty,
      service: { iss: service.issuer, sub: service.subject, jkt: decodeBase64Url(service.thumbprint)! },
    });
    expect(text(await decryptBody(keys.responseKey, response.body!))).toBe('welcome');

    // A session request: the body encrypted under the session root, the answer under K_rsp.
    const session = parseResponseSession(fieldLines(response.headers, 'oidc2-session'));
    const nonce2 = createNonce();
    const body = await encryptBody(await requestKey({ rk: keys.rk, sid: keys.sid, nonce: nonce2, method: 'POST', audience }), utf8('{"cones":2}'));
    const next = await signRequest(
      { method: 'POST', url: audience, headers: { 'oidc2-session': serializeSession(session.token), 'content-encoding': 'aes128gcm' }, body },
      { wit, key: caller.signer, nonce: nonce2, now },
    );
    expect(next.headers['signature-input']![0]).toContain('"content-encoding"');
    const second = await exchange(svc, next, 'ok');
    expect(text(second.seen)).toBe('{"cones":2}');
    await verifyResponse(second.response, { request: next, binding: next.binding, witVerifier, now });
    expect(text(await decryptBody(await responseKey({ rk: keys.rk, sid: keys.sid, nonce: nonce2, status: 200 }), second.response.body!))).toBe('ok');
  });
});
