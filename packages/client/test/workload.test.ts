// The client as a workload (docs/protocol.md sections 3a, 3b, 3a, 4 and 7.8): it holds a WIT instead of an ICT,
// proves with a WIMSE signature (draft -07 or -06) or a WPT, forwards a Txn-Token unchanged, and
// accepts only answers signed with a WIT from a trusted trust domain; with WIMSE signatures it
// encrypts end to end as ICT callers do. The service is the core's own, run in process.
import { SignJWT, decodeJwt, decodeProtectedHeader, importJWK } from 'jose';
import { createClient, type ClientOptions } from '@oidc2/client';
import { wimseTokenHash, type Oidc2Options } from '@oidc2/core';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../../../test/support/credentials';
import { settledCode } from '../../../test/support/error-code';
import { newTrustDomain, type TestTrustDomain } from '../../core/test/support/wit';
import { SERVICE_URL, workloadService, type WorkloadService } from './support/workload-service';

let clock = 1_800_000_000;
const now = () => clock;
const SERVICE = 'spiffe://workloads.test/inventory';
const CALLER = 'spiffe://workloads.test/billing';

let td: TestTrustDomain;
let foreign: TestTrustDomain;
let tts: TestKey; // the Transaction Token Service's key
let serviceKey: TestKey;
let serviceWit: string;

beforeAll(async () => {
  td = await newTrustDomain('workloads.test', { issuer: 'https://wit.workloads.test' });
  foreign = await newTrustDomain('elsewhere.test');
  tts = await newKey('ES256');
  serviceKey = await newKey('Ed25519');
  serviceWit = await td.mint(serviceKey, { subject: SERVICE, now: clock, lifetime: 3600 });
});

beforeEach(() => {
  clock = 1_800_000_000;
});

function service(extra: Partial<Oidc2Options> = {}, wit = serviceWit, key = serviceKey): WorkloadService {
  return workloadService({
    issuers: [{ issuer: 'https://op.workloads.test', jwksUri: 'https://keys.workloads.test/jwks' }],
    workloads: { trustDomains: [{ trustDomain: td.trustDomain, issuer: td.issuer!, jwks: td.jwks }], httpSignatureDrafts: ['07', '06'] },
    credentials: { wit: { wit, privateKey: key.privateJwk } },
    transactionTokens: { trustDomain: td.trustDomain, jwks: { keys: [{ ...tts.publicJwk, kid: 'tts', alg: 'ES256' }] } },
    now,
    ...extra,
  });
}

/** A WIT for the client's key, as an agent or issuer would hand it out. */
const mintWit = (jwk: { alg?: string }, lifetime = 600, subject = CALLER) => td.mint({ publicJwk: jwk, alg: jwk.alg } as TestKey, { subject, now: clock, lifetime });

function client(svc: { fetch: typeof fetch }, extra: Partial<ClientOptions> = {}) {
  return createClient({
    proof: 'wimse-signature',
    serviceTrustDomains: [{ trustDomain: td.trustDomain, jwks: td.jwks }],
    expectedService: SERVICE,
    getWit: (jwk) => mintWit(jwk),
    fetch: svc.fetch,
    now,
    ...extra,
  } as ClientOptions);
}

async function txnToken(txn = 'txn-4711', aud = td.trustDomain): Promise<string> {
  return new SignJWT({ txn, sub: 'alice@workloads.test', aud, iat: clock, exp: clock + 120, tctx: { action: 'refund' } })
    .setProtectedHeader({ alg: 'ES256', kid: 'tts', typ: 'txntoken+jwt' })
    .sign(await importJWK(tts.privateJwk, 'ES256'));
}

const signatureInput = (svc: WorkloadService) => svc.seen.at(-1)!.headers['signature-input']![0]!;

describe('workload proofs', () => {
  it.each([
    ['wimse-signature', 'ES256'],
    ['wimse-signature', 'Ed25519'],
    ['wpt', 'ES256'],
    ['wpt', 'Ed25519'],
  ] as const)('%s with %s: the service sees the workload, the workload the service WIT', async (proof, algorithm) => {
    const svc = service();
    const api = client(svc, { proof, algorithm });
    const response = await api(`${SERVICE_URL}/items/7?x=1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"qty":2}' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ caller: CALLER, kind: 'workload', issuer: td.issuer, proof: proof === 'wpt' ? 'wpt' : 'http-signature', transaction: null, echo: '{"qty":2}' });
    expect(response.service).toMatchObject({ subject: SERVICE, issuer: td.issuer, trustDomain: 'workloads.test', contexts: [], thumbprint: serviceKey.thumbprint });
    const sent = svc.seen[0]!.headers;
    expect(sent['workload-identity-token']).toEqual([await api.wit()]);
    expect(sent['identity-certification-token']).toBeUndefined();
    if (proof === 'wpt') {
      const wpt = sent.authorization![0]!.replace(/^WPT /, '');
      expect(decodeProtectedHeader(wpt)).toEqual({ typ: 'wpt+jwt', alg: algorithm });
      expect(decodeJwt(wpt)).toMatchObject({ aud: `${SERVICE_URL}/items/7`, exp: clock + 60, wth: await wimseTokenHash(await api.wit()) });
      expect(sent['content-digest']).toBeDefined();
      expect(sent['signature-input']).toBeUndefined();
    } else {
      expect(signatureInput(svc)).toMatch(/^wimse=\("@method" "@path" "@query" "workload-identity-token" "content-type" "content-digest"\);.*tag="wimse-workload-to-workload";wimse-aud="http:\/\/inventory.test\/items\/7";wimse-sign-response$/);
    }
  });

  it("signs in draft -06's form with wimseDraft '06' (and the service answers in it)", async () => {
    const svc = service();
    const response = await client(svc, { wimseDraft: '06' })(`${SERVICE_URL}/items?page=2`);
    expect((await response.json()).caller).toBe(CALLER);
    expect(signatureInput(svc)).toMatch(/^wimse=\("@method" "@request-target" "workload-identity-token"\)/);
  });

  it('the WIT comes from the provider with the key and its alg, once, and is renewed before it expires', async () => {
    const svc = service();
    const asked: object[] = [];
    const api = client(svc, { algorithm: 'Ed25519', getWit: (jwk) => (asked.push(jwk), mintWit(jwk, 120)) });
    await Promise.all([api(`${SERVICE_URL}/a`), api(`${SERVICE_URL}/b`), api(`${SERVICE_URL}/c`)]);
    expect(asked).toEqual([{ ...(await api.publicKey()), alg: 'Ed25519' }]);
    const first = await api.wit();
    clock += 61; // past half the WIT's 120 s: renewed
    await api(`${SERVICE_URL}/d`);
    expect(asked).toHaveLength(2);
    expect(await api.wit()).not.toBe(first);
    expect(svc.seen.at(-1)!.headers['workload-identity-token']).toEqual([await api.wit()]);
  });

  it('keeps the current WIT while its renewal fails, then reports the provider failing as issuer_unavailable', async () => {
    const svc = service();
    let fail = false;
    const api = client(svc, { getWit: async (jwk) => (fail ? Promise.reject(new Error('agent down')) : mintWit(jwk, 120)) });
    await api(`${SERVICE_URL}/a`);
    fail = true;
    clock += 61;
    expect((await api(`${SERVICE_URL}/b`)).status).toBe(200);
    clock += 60; // expired
    expect(await settledCode(api(`${SERVICE_URL}/c`))).toBe('issuer_unavailable');
    expect(await settledCode(client(svc, { getWit: () => Promise.reject(new Error('agent down')) })(`${SERVICE_URL}/a`))).toBe('issuer_unavailable');
  });

  it('a service without a WIT answers a WPT caller with its ICT, accepted only when serviceIssuers trusts it', async () => {
    const attest: TestIssuer = await newIssuer('https://attest.workloads.test');
    const ict = await attest.mint(serviceKey, { subject: SERVICE, now: clock, lifetime: 3600 });
    const svc = service({ credentials: { ict: { ict, privateKey: serviceKey.privateJwk } } });
    const trusting = client(svc, { proof: 'wpt', serviceIssuers: [{ issuer: attest.issuer, jwks: attest.jwks }] });
    const response = await trusting(`${SERVICE_URL}/a`);
    expect(response.service).toMatchObject({ subject: SERVICE, issuer: attest.issuer });
    expect(response.service.trustDomain).toBeUndefined();
    expect(await settledCode(client(svc, { proof: 'wpt' })(`${SERVICE_URL}/a`))).toBe('response_unsigned');
  });
});

describe('Txn-Token forwarding', () => {
  it.each(['wimse-signature', 'wpt'] as const)('%s: a Txn-Token passed with the request goes on unchanged, covered or bound, and the service sees its transaction', async (proof) => {
    const svc = service();
    const token = await txnToken();
    const response = await client(svc, { proof })(`${SERVICE_URL}/refunds`, { method: 'POST', headers: { 'txn-token': token }, body: '{}' });
    expect((await response.json()).transaction).toBe('txn-4711');
    const sent = svc.seen[0]!.headers;
    expect(sent['txn-token']).toEqual([token]);
    if (proof === 'wpt') expect(decodeJwt(sent.authorization![0]!.slice(4)).tth).toBe(await wimseTokenHash(token));
    else expect(signatureInput(svc)).toContain('"txn-token"');
  });

  it('an ICT caller forwards it the same way, covered by its signature', async () => {
    const users = await newIssuer('https://op.workloads.test');
    const attest = await newIssuer('https://attest.workloads.test');
    const svc = service({
      issuers: [{ issuer: users.issuer, jwks: users.jwks }],
      credentials: { ict: { ict: await attest.mint(serviceKey, { subject: SERVICE, now: clock, lifetime: 3600 }), privateKey: serviceKey.privateJwk } },
    });
    const api = createClient({ serviceIssuers: [{ issuer: attest.issuer, jwks: attest.jwks }], getIct: (jwk) => users.mint(jwk, { now: clock }), fetch: svc.fetch, now });
    const response = await api(`${SERVICE_URL}/refunds`, { headers: { 'txn-token': await txnToken('txn-1') } });
    expect(await response.json()).toMatchObject({ caller: 'alice', transaction: 'txn-1' });
    expect(signatureInput(svc)).toContain('"txn-token"');
  });

  it('a Txn-Token the service refuses is its signed answer; a mangled one is the caller’s TypeError', async () => {
    const svc = service();
    const api = client(svc);
    const refused = await api(`${SERVICE_URL}/refunds`, { headers: { 'txn-token': await txnToken('txn-1', 'other.test') } });
    expect(refused.status).toBe(401);
    expect((await refused.json()).code).toBe('txn_token_invalid');
    expect(refused.service.subject).toBe(SERVICE);
    await expect(api(`${SERVICE_URL}/a`, { headers: { 'txn-token': 'not a token' } })).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    const headers = new Headers([['txn-token', await txnToken('a')], ['txn-token', await txnToken('b')]]);
    await expect(api(`${SERVICE_URL}/a`, { headers })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(svc.seen).toHaveLength(0);
  });
});

describe('answers that are refused', () => {
  it('an answer signed with a WIT of an untrusted trust domain is response_untrusted', async () => {
    const rogueKey = await newKey('ES256');
    const svc = service({}, await foreign.mint(rogueKey, { subject: 'spiffe://elsewhere.test/inventory', now: clock }), rogueKey);
    for (const proof of ['wimse-signature', 'wpt'] as const) {
      expect(await settledCode(client(svc, { proof, expectedService: undefined })(`${SERVICE_URL}/a`))).toBe('response_untrusted');
    }
  });

  it('an answer from another workload than the expected one is response_untrusted', async () => {
    const svc = service();
    expect(await settledCode(client(svc, { expectedService: 'spiffe://workloads.test/ledger' })(`${SERVICE_URL}/a`))).toBe('response_untrusted');
    expect(await settledCode(client(svc, { proof: 'wpt', expectedService: ['spiffe://workloads.test/ledger'] })(`${SERVICE_URL}/a`))).toBe('response_untrusted');
  });

  it('an unsigned answer is response_unsigned, for both proofs', async () => {
    const plain: typeof fetch = async () => new Response('{"ok":true}', { headers: { 'content-type': 'application/json' } });
    for (const proof of ['wimse-signature', 'wpt'] as const) expect(await settledCode(client({ fetch: plain }, { proof })(`${SERVICE_URL}/a`))).toBe('response_unsigned');
  });

  it('an answer whose body changed on the way is response_signature_invalid, for both proofs', async () => {
    const svc = service();
    const tampering: typeof fetch = async (input, init) => {
      const response = await svc.fetch(input, init);
      const body = new Uint8Array(await response.arrayBuffer());
      body[body.length - 1]! ^= 1;
      return new Response(body, { status: response.status, headers: response.headers });
    };
    for (const proof of ['wimse-signature', 'wpt'] as const) expect(await settledCode(client({ fetch: tampering }, { proof })(`${SERVICE_URL}/a`))).toBe('response_signature_invalid');
  });

  it('a service without a WIT refuses a WIMSE signature that asks for a signed answer: unsigned, so response_unsigned', async () => {
    const svc = workloadService({ issuers: [{ issuer: 'https://op.workloads.test', jwksUri: 'https://keys.workloads.test/jwks' }], workloads: { trustDomains: [{ trustDomain: td.trustDomain, jwks: td.jwks }] }, now });
    expect(await settledCode(client(svc)(`${SERVICE_URL}/a`))).toBe('response_unsigned');
  });
});

describe('the WIT the provider hands out is checked before use', () => {
  it.each([
    ['no JWT', async () => 'not-a-jwt', 'wit_invalid'],
    ['an ICT instead of a WIT', async (jwk: object) => (await newIssuer()).mint(jwk as never, { now: clock }), 'wit_invalid'],
    ['a WIT for another key', async () => mintWit({ ...(await newKey('ES256')).publicJwk, alg: 'ES256' }), 'wit_invalid'],
    ['a WIT whose cnf.jwk names no alg', async (jwk: { alg?: string }) => mintWit({ ...jwk, alg: undefined }), 'wit_invalid'],
    ['a WIT whose cnf.jwk alg does not fit the key', async (jwk: { alg?: string }) => mintWit({ ...jwk, alg: 'ES384' }), 'wit_invalid'],
    ['a WIT without sub', async (jwk: { alg?: string }) => td.mint({ publicJwk: jwk, alg: jwk.alg } as TestKey, { now: clock, claims: { sub: undefined } }), 'wit_invalid'],
    ['an expired WIT', async (jwk: { alg?: string }) => td.mint({ publicJwk: jwk, alg: jwk.alg } as TestKey, { now: clock - 700 }), 'wit_expired'],
  ] as const)('%s: %s', async (_name, getWit, code) => {
    const svc = service();
    expect(await settledCode(client(svc, { getWit: getWit as never })(`${SERVICE_URL}/a`))).toBe(code);
    expect(svc.seen).toHaveLength(0);
  });

  it('accepts EdDSA as the alg of an Ed25519 key, and proves with it', async () => {
    const svc = service();
    const api = client(svc, { proof: 'wpt', algorithm: 'Ed25519', getWit: (jwk) => mintWit({ ...jwk, alg: 'EdDSA' }) });
    expect((await api(`${SERVICE_URL}/a`)).status).toBe(200);
    expect(decodeProtectedHeader(svc.seen[0]!.headers.authorization![0]!.slice(4)).alg).toBe('EdDSA');
  });
});

describe('end-to-end encryption with WIMSE signatures (docs/protocol.md section 7.8)', () => {
  it.each([
    ['with an iss', 'https://wit.encrypted.test'],
    ['without iss', undefined],
  ])('WITs %s: a session is opened, bodies travel encrypted, the answer is the service’s', async (_name, issuer) => {
    const domain = await newTrustDomain('encrypted.test', issuer === undefined ? {} : { issuer });
    const key = await newKey('ES256');
    const svc = workloadService({
      issuers: [{ issuer: 'https://op.workloads.test', jwksUri: 'https://keys.workloads.test/jwks' }],
      workloads: { trustDomains: [{ trustDomain: 'encrypted.test', jwks: domain.jwks }] },
      credentials: { wit: { wit: await domain.mint(key, { subject: 'spiffe://encrypted.test/vault', now: clock, lifetime: 3600 }), privateKey: key.privateJwk } },
      now,
    });
    const wire: Uint8Array[] = [];
    const api = createClient({
      proof: 'wimse-signature',
      serviceTrustDomains: [{ trustDomain: 'encrypted.test', jwks: domain.jwks }],
      expectedService: 'spiffe://encrypted.test/vault',
      getWit: (jwk) => domain.mint({ publicJwk: jwk, alg: jwk.alg } as TestKey, { subject: 'spiffe://encrypted.test/app', now: clock }),
      encryption: 'required',
      fetch: async (input, init) => {
        const request = new Request(input, init);
        wire.push(new Uint8Array(await request.clone().arrayBuffer()));
        const response = await svc.fetch(request);
        wire.push(new Uint8Array(await response.clone().arrayBuffer()));
        return response;
      },
      now,
    });
    const response = await api(`${SERVICE_URL}/secrets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"pin":"8512"}' });
    expect(response.encryption).toEqual({ suite: 'x25519', mode: 'session', epoch: 0, bodyEncrypted: true });
    expect(await response.json()).toMatchObject({ caller: 'spiffe://encrypted.test/app', issuer: issuer ?? '', echo: '{"pin":"8512"}' });
    expect(response.service).toMatchObject({ subject: 'spiffe://encrypted.test/vault', issuer: issuer ?? '' });
    const again = await api(`${SERVICE_URL}/secrets`);
    expect(again.encryption?.mode).toBe('session');
    const seen = Buffer.concat(wire).toString('latin1');
    expect(seen).not.toContain('8512');
    expect(seen).not.toContain('encrypted.test/app');
    expect(svc.seen.map((s) => s.headers['content-encoding']?.[0] ?? null)).toEqual(['aes128gcm', null]);
  });

  it("draft -06 signatures encrypt the same way", async () => {
    const svc = service();
    const api = client(svc, { encryption: 'required', wimseDraft: '06' });
    const response = await api(`${SERVICE_URL}/vault?x=1`, { method: 'PUT', body: 'sealed' });
    expect(response.encryption).toMatchObject({ mode: 'session', bodyEncrypted: true });
    expect((await response.json()).echo).toBe('sealed');
    expect(signatureInput(svc)).toMatch(/^wimse=\("@method" "@request-target" "workload-identity-token"/);
  });

  it('a renewed WIT for the same key keeps the session (the service binds iss, sub and key)', async () => {
    const svc = service();
    let issued = 0;
    const api = client(svc, { encryption: 'required', getWit: (jwk) => (issued++, mintWit(jwk, 120)) });
    expect((await api(`${SERVICE_URL}/a`)).encryption?.mode).toBe('handshake');
    clock += 61;
    const renewed = await api(`${SERVICE_URL}/b`, { method: 'POST', body: '{"n":1}' });
    expect(issued).toBe(2);
    expect(renewed.encryption).toMatchObject({ mode: 'session', epoch: 0, bodyEncrypted: true });
    expect((await renewed.json()).echo).toBe('{"n":1}');
  });

  it('an encrypted answer signed by a WIT of an untrusted trust domain is response_untrusted', async () => {
    const rogueKey = await newKey('ES256');
    const svc = service({}, await foreign.mint(rogueKey, { subject: 'spiffe://elsewhere.test/inventory', now: clock }), rogueKey);
    expect(await settledCode(client(svc, { encryption: 'required', expectedService: undefined })(`${SERVICE_URL}/a`))).toBe('response_untrusted');
  });

  it('an unsigned answer to an encrypted WIMSE request is e2ee_response_unsigned', async () => {
    const plain: typeof fetch = async () => new Response('{}', { headers: { 'content-type': 'application/json' } });
    expect(await settledCode(client({ fetch: plain }, { encryption: 'required' })(`${SERVICE_URL}/a`))).toBe('e2ee_response_unsigned');
  });
});

describe('options', () => {
  const wimse = { proof: 'wimse-signature', serviceTrustDomains: [{ trustDomain: 'workloads.test', jwksUri: 'https://keys.workloads.test/jwks' }], getWit: async (): Promise<string> => '' };
  const ict = { serviceIssuers: [{ issuer: 'https://a.example', jwksUri: 'https://keys.workloads.test/jwks' }], getIct: async (): Promise<string> => '' };
  const code = (options: object) => {
    try {
      createClient(options as ClientOptions);
    } catch (error) {
      return (error as { code?: string }).code;
    }
    return 'created';
  };

  it('accepts a workload with either proof, either draft, and the issuer grants that obtain a WIT', () => {
    expect(code(wimse)).toBe('created');
    expect(code({ ...wimse, wimseDraft: '06', encryption: 'required' })).toBe('created');
    expect(code({ ...wimse, proof: 'wpt', serviceIssuers: ict.serviceIssuers })).toBe('created');
    const { getWit: _, ...noProvider } = wimse;
    for (const grant of [undefined, 'wit', 'token-exchange']) {
      expect(code({ ...noProvider, issuer: { url: 'https://wit.example', grant, subject: CALLER, credential: { apiKey: 'k' } } })).toBe('created');
    }
  });

  it.each([
    ['an unknown proof', { ...wimse, proof: 'mtls' }, 'ERR_INVALID_ARG_VALUE'],
    ['a workload proof without serviceTrustDomains', { ...wimse, serviceTrustDomains: undefined }, 'ERR_INVALID_ARG_VALUE'],
    ['an empty serviceTrustDomains', { ...wimse, serviceTrustDomains: [] }, 'ERR_INVALID_ARG_VALUE'],
    ['serviceTrustDomains with an ICT proof', { ...ict, serviceTrustDomains: wimse.serviceTrustDomains }, 'ERR_INVALID_ARG_VALUE'],
    ["serviceIssuers with 'wimse-signature'", { ...wimse, serviceIssuers: ict.serviceIssuers }, 'ERR_INVALID_ARG_VALUE'],
    ["an empty serviceIssuers with 'wpt'", { ...wimse, proof: 'wpt', serviceIssuers: [] }, 'ERR_INVALID_ARG_VALUE'],
    ['an unknown key in a trust domain', { ...wimse, serviceTrustDomains: [{ trustDomain: 'workloads.test', jwksUri: 'https://keys.workloads.test/jwks', jwks_uri: 'x' }] }, 'ERR_UNKNOWN_OPTION'],
    ['a trust domain that is no host name', { ...wimse, serviceTrustDomains: [{ trustDomain: 'Work Loads', jwksUri: 'https://keys.workloads.test/jwks' }] }, 'ERR_INVALID_ARG_VALUE'],
    ['wimseDraft with wpt', { ...wimse, proof: 'wpt', wimseDraft: '07' }, 'ERR_INVALID_ARG_VALUE'],
    ['wimseDraft with an ICT proof', { ...ict, wimseDraft: '07' }, 'ERR_INVALID_ARG_VALUE'],
    ['an unknown wimseDraft', { ...wimse, wimseDraft: '05' }, 'ERR_INVALID_ARG_VALUE'],
    ['getIct with a workload proof', { ...wimse, getWit: undefined, getIct: async (): Promise<string> => '' }, 'ERR_INVALID_ARG_VALUE'],
    ['getWit with an ICT proof', { ...ict, getWit: async (): Promise<string> => '' }, 'ERR_INVALID_ARG_VALUE'],
    ['neither issuer nor getWit', { ...wimse, getWit: undefined }, 'ERR_INVALID_ARG_VALUE'],
    ['both issuer and getWit', { ...wimse, issuer: { url: 'https://wit.example', subject: CALLER, credential: { apiKey: 'k' } } }, 'ERR_INVALID_ARG_VALUE'],
    ['a getWit that is no function', { ...wimse, getWit: 'token' }, 'ERR_INVALID_ARG_TYPE'],
    ["encryption with 'wpt'", { ...wimse, proof: 'wpt', encryption: 'required' }, 'ERR_INVALID_ARG_VALUE'],
    ["encryption 'preferred' with 'wpt'", { ...wimse, proof: 'wpt', encryption: 'preferred' }, 'ERR_INVALID_ARG_VALUE'],
    ["issuer grant 'ict' with a workload proof", { ...wimse, getWit: undefined, issuer: { url: 'https://wit.example', grant: 'ict', subject: CALLER, credential: { apiKey: 'k' } } }, 'ERR_INVALID_ARG_VALUE'],
    ["issuer grant 'wit' with an ICT proof", { ...ict, getIct: undefined, issuer: { url: 'https://wit.example', grant: 'wit', subject: CALLER, credential: { apiKey: 'k' } } }, 'ERR_INVALID_ARG_VALUE'],
    ["issuer grant 'wit' without subject", { ...wimse, getWit: undefined, issuer: { url: 'https://wit.example', credential: { apiKey: 'k' } } }, 'ERR_INVALID_ARG_VALUE'],
    ['contexts for a WIT', { ...wimse, getWit: undefined, issuer: { url: 'https://wit.example', grant: 'token-exchange', contexts: ['a'], credential: { apiKey: 'k' } } }, 'ERR_INVALID_ARG_VALUE'],
    ['requiredClaims for a WIT', { ...wimse, getWit: undefined, issuer: { url: 'https://wit.example', subject: CALLER, requiredClaims: ['email'], credential: { apiKey: 'k' } } }, 'ERR_INVALID_ARG_VALUE'],
  ])('refuses %s at construction', (_name, options, expected) => {
    expect(code(options)).toBe(expected);
  });

  it('names serviceTrustDomains in the messages of its checks', () => {
    expect(() => createClient({ ...wimse, serviceTrustDomains: [{ trustDomain: 'x', jwksUri: 'https://keys.workloads.test/jwks', extra: 1 }] } as never)).toThrow(/options\.serviceTrustDomains\[0\]/);
  });

  it('ict() and wit() answer for the credential the client holds, and refuse the other', async () => {
    const svc = service();
    const workload = client(svc);
    expect(decodeJwt(await workload.wit()).sub).toBe(CALLER);
    await expect(workload.ict()).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    const user = createClient({ ...ict, getIct: async () => 'x.y.z' } as ClientOptions);
    await expect(user.wit()).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('in wpt mode the client sets Authorization itself', async () => {
    const svc = service();
    await expect(client(svc, { proof: 'wpt' })(`${SERVICE_URL}/a`, { headers: { authorization: 'Bearer x' } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(svc.seen).toHaveLength(0);
  });
});
