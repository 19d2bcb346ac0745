// docs/protocol.md section 7's worked example, recomputed. The fixed inputs (key-pair ikm, the
// service's ephemeral ikm, RFC 8188 salts, STEK and JWE IVs, nonces and times) come from
// test/fixtures/e2ee-v1.json; every intermediate is computed here with the project's code and must
// equal both the fixture and the blocks printed in the doc. The service's HPKE side runs through both
// engines (`hpke` behind the facade, `@hpke/core`), everything on both crypto paths, and the caller's
// side, the session tokens, the bodies and the signatures are checked the way a peer would check them.
//
// PRINT_EXAMPLE=1 npx jest test/conformance/e2ee-example.test.ts prints the fixture's `expected`
// member and the doc blocks, for regenerating both after a deliberate change.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compactDecrypt } from 'jose';
import { CipherSuite as CoreSuite, DhkemP256HkdfSha256, ExportOnly, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import {
  OIDC2_PROFILE,
  createAuthenticator,
  createContentDigest,
  createIctVerifier,
  fieldLines,
  parseSignatureInput,
  signMessage,
  signRequest,
  signResponse,
  signatureBase,
  verifyResponse,
  type Fields,
  type HttpRequest,
  type HttpResponse,
  type IctVerifier,
  type ServiceIdentity,
  type SignedRequest,
} from '@oidc2/core';
import { importKey, sign, type KeyHandle } from '../../packages/core/src/lib/crypto';
import { encodeBase64Url } from '../../packages/core/src/lib/base64';
import { boundRequestFields } from '../../packages/core/src/binding';
import { hpkeSuite, testing, type HpkeKeyPair } from '../../packages/core/src/e2ee/hpke';
import {
  parseRequestKeyShare,
  parseResponseKeyShare,
  parseResponseSession,
  serializeRequestKeyShare,
  serializeResponseKeyShare,
  serializeSession,
  type KeyShare,
  type SuiteName,
} from '../../packages/core/src/e2ee/fields';
import {
  E2EE_LABELS,
  SESSION_KEY_LENGTH,
  SID_LENGTH,
  handshakeInfo,
  handshakeTranscript,
  lp,
  macKeys,
  partyId,
  rekeyInfo,
  rekeyPskId,
  rekeyTranscript,
  requestKey,
  requestKeyInfo,
  responseKey,
  responseKeyInfo,
  type PartyIdentity,
} from '../../packages/core/src/e2ee/transcript';
import { acceptHandshake, acceptRekey, chooseSuite, completeHandshake, completeRekey, type ExchangeBinding } from '../../packages/core/src/e2ee/key-exchange';
import { checkSessionBinding, createSessionTokens } from '../../packages/core/src/e2ee/session-token';
import { StaticSessionKeyStore } from '../../packages/core/src/e2ee/session-keys';
import { decryptBody, encryptBody } from '../../packages/core/src/e2ee/aes128gcm';
import { SESSION_MAC_TAG, signSessionMacRequest, signSessionMacResponse, verifySessionMacResponse } from '../../packages/core/src/e2ee/symmetric';
import { audienceMatcher } from '../../packages/core/src/lib/audience';
import { CRYPTO_PATHS, b64u, hex, onCryptoPath, toB64u, toHex, utf8 } from '../../packages/core/test/support/e2ee';
import fixtureJson from '../fixtures/e2ee-v1.json';
import section6 from '../fixtures/protocol-example.json';

// ---------------------------------------------------------------------------------------------
// The fixture.

interface RequestInput {
  method: string;
  path: string;
  created: number;
  nonce: string;
  /** The caller's DeriveKeyPair ikm, one per suite offered (handshake and rekey). */
  ikmC?: Record<string, string>;
  contentType?: string;
  body?: string;
  salt?: string;
}
interface ResponseInput {
  status: number;
  created: number;
  nonce: string;
  contentType: string;
  body: string;
  salt: string;
  /** The session token's JWE IV (handshake and rekey). */
  tokenIv?: string;
}
interface Phase {
  request: RequestInput;
  /** The service's ephemeral ikm (handshake and rekey). */
  ikmE?: string;
  response: ResponseInput;
}
interface ExampleInput {
  handshake: Phase;
  session: Phase;
  rekey: Phase;
  /**
   * One exchange in symmetric session authentication (docs/protocol.md section 7.11), x25519 only: the
   * rekey's token as a service with `e2ee.symmetric` issues it (its own JWE IV), then a session
   * request signed under K_c2s and its response under K_s2c.
   */
  symmetric?: Phase & { tokenIv: string };
}
interface Jwk {
  kty: string;
  crv?: string;
  kid?: string;
  x?: string;
  d?: string;
  k?: string;
  alg?: string;
}
interface Fixture {
  issuer: string;
  issuerKey: Jwk;
  callerKey: Jwk;
  audience: string;
  callerIct: { header: object; claims: object };
  serviceKey: Jwk;
  serviceIct: { header: object; claims: object };
  servicePreference: SuiteName[];
  signatureLifetime: number;
  sessionTokens: { epochSeconds: number; maxAgeSeconds: number; rekeySeconds: number };
  stek: { kty: 'oct'; kid: string; k: string };
  examples: Record<Suite, ExampleInput>;
  expected: Expected;
}

const F = fixtureJson as unknown as Fixture;
const SUITES = ['x25519', 'p256'] as const;
type Suite = (typeof SUITES)[number];
const ENGINES = ['hpke', '@hpke/core'] as const;
type Engine = (typeof ENGINES)[number];

// ---------------------------------------------------------------------------------------------
// What the example computes: exactly the shape of the fixture's `expected` member.

interface Signed {
  signatureInput: string;
  signature: string;
  base: string;
}
interface Body {
  body: string;
  contentDigest: string;
}
interface TokenValues {
  header: string;
  claims: string;
  compact: string;
  field: string;
}
interface ExampleValues {
  handshake: {
    pkC: Record<string, string>;
    KS: string;
    suite: string;
    TH: string;
    info: string;
    enc: string;
    rk: string;
    sid: string;
    K_hs: string;
    request: Signed;
    token: TokenValues;
    response: Signed & Body & { keyShare: string };
  };
  session: {
    request: Signed & Body & { K_req_info: string; K_req: string };
    response: Signed & Body & { K_rsp_info: string; K_rsp: string };
  };
  rekey: {
    pkC: Record<string, string>;
    KS: string;
    suite: string;
    TH: string;
    info: string;
    pskId: string;
    enc: string;
    rk: string;
    K_rk: string;
    request: Signed & Body & { K_req_info: string; K_req: string };
    token: TokenValues;
    response: Signed & Body & { keyShare: string };
  };
}
interface PartyValues {
  callerIct: string;
  serviceIct: string;
  jktC: string;
  idC: string;
  jktS: string;
  idS: string;
}
interface SymmetricValues {
  token: TokenValues;
  K_c2s_info: string;
  K_c2s: string;
  K_s2c_info: string;
  K_s2c: string;
  request: Signed & Body & { K_req_info: string; K_req: string };
  response: Signed & Body & { K_rsp_info: string; K_rsp: string };
}
type Expected = { parties: PartyValues; symmetric: SymmetricValues } & Record<Suite, ExampleValues>;

// ---------------------------------------------------------------------------------------------
// The parties: the section 6 caller and issuer, and the service with its own key and ICT.

const { d: _issuerD, ...issuerPublic } = F.issuerKey;
const HOST = new URL(F.audience).host;

async function compactJws(parts: { header: object; claims: object }, key: KeyHandle): Promise<string> {
  const input = `${encodeBase64Url(utf8(JSON.stringify(parts.header)))}.${encodeBase64Url(utf8(JSON.stringify(parts.claims)))}`;
  return `${input}.${encodeBase64Url(await sign(key, utf8(input)))}`;
}

interface Parties {
  values: PartyValues;
  callerKey: KeyHandle;
  serviceKey: KeyHandle;
  /** C and S as their verified ICTs state them. */
  caller: PartyIdentity;
  service: PartyIdentity;
  ictVerifier: IctVerifier;
}

async function buildParties(): Promise<Parties> {
  const issuerKey = await importKey(F.issuerKey, 'Ed25519', 'sign');
  const callerIct = await compactJws(F.callerIct, issuerKey);
  const serviceIct = await compactJws(F.serviceIct, issuerKey);
  // Every ICT of the example is valid throughout it (1790000100 to 1790000601).
  const ictVerifier = createIctVerifier({ issuers: [{ issuer: F.issuer, jwks: { keys: [issuerPublic] } }], now: () => F.examples.x25519.handshake.request.created });
  const identity = async (ict: string): Promise<PartyIdentity> => {
    const verified = await ictVerifier.verify(ict);
    return { iss: verified.issuer, sub: verified.subject, jkt: b64u(verified.thumbprint) };
  };
  const caller = await identity(callerIct);
  const service = await identity(serviceIct);
  return {
    values: { callerIct, serviceIct, jktC: toHex(caller.jkt), idC: toHex(partyId(caller)), jktS: toHex(service.jkt), idS: toHex(partyId(service)) },
    callerKey: await importKey(F.callerKey, 'Ed25519', 'sign'),
    serviceKey: await importKey(F.serviceKey, 'Ed25519', 'sign'),
    caller,
    service,
    ictVerifier,
  };
}

// ---------------------------------------------------------------------------------------------
// The service's HPKE sender with its ephemeral fixed, through either engine.

interface Sender {
  enc: Uint8Array;
  export(context: string, length: number): Promise<Uint8Array>;
}
interface Psk {
  key: Uint8Array;
  id: Uint8Array;
}

function coreSuite(suite: SuiteName): CoreSuite {
  return new CoreSuite({ kem: suite === 'x25519' ? new DhkemX25519HkdfSha256() : new DhkemP256HkdfSha256(), kdf: new HkdfSha256(), aead: new ExportOnly() });
}

const SENDERS: Record<Engine, (suite: SuiteName, pkC: Uint8Array, info: Uint8Array, ikmE: Uint8Array, psk?: Psk) => Promise<Sender>> = {
  // The facade with its test hook: the engine derives the ephemeral from ikmE instead of generating it.
  async hpke(suite, pkC, info, ikmE, psk) {
    const s = testing.suite(suite, { ikmE });
    const pk = await s.deserializePublicKey(pkC);
    const { enc, exporter } = psk ? await s.setupPSKS(pk, info, psk.key, psk.id) : await s.setupBaseS(pk, info);
    return { enc, export: (context, length) => exporter.export(utf8(context), length) };
  },
  // @hpke/core's `ekm` test parameter: the ephemeral from DeriveKeyPair(ikmE).
  async '@hpke/core'(suite, pkC, info, ikmE, psk) {
    const s = coreSuite(suite);
    const ctx = await s.createSenderContext({
      recipientPublicKey: await s.kem.deserializePublicKey(pkC),
      info,
      ekm: ikmE,
      ...(psk ? { psk: { key: psk.key, id: psk.id } } : {}),
    });
    return { enc: new Uint8Array(ctx.enc), export: async (context, length) => new Uint8Array(await ctx.export(utf8(context), length)) };
  },
};

// ---------------------------------------------------------------------------------------------
// Building the example.

function tokensAt(now: number) {
  return createSessionTokens({ keys: new StaticSessionKeyStore({ keys: [F.stek] }), now: () => now, ...F.sessionTokens });
}

/** The caller's ephemeral key pairs (DeriveKeyPair of the fixture's ikm), its share field, and the public keys. */
async function offer(ikmC: Record<string, string>) {
  const keyPairs = new Map<SuiteName, HpkeKeyPair>();
  const shares: KeyShare[] = [];
  const pkC: Record<string, string> = {};
  for (const [suite, ikm] of Object.entries(ikmC) as [SuiteName, string][]) {
    const keyPair = await hpkeSuite(suite).deriveKeyPair(hex(ikm));
    const key = await hpkeSuite(suite).serializePublicKey(keyPair.publicKey);
    keyPairs.set(suite, keyPair);
    shares.push({ suite, key });
    pkC[suite] = toHex(key);
  }
  return { keyPairs, pkC, field: serializeRequestKeyShare(shares) };
}

/** The caller's signed request: preset nonce and time, as the caller must fix N before it can derive K_req. */
async function sendRequest(parties: Parties, r: RequestInput, headers: Fields, body?: Uint8Array): Promise<SignedRequest> {
  return signRequest(
    { method: r.method, url: `${F.audience}${r.path}`, headers: { host: [HOST], ...headers }, body },
    { ict: parties.values.callerIct, key: parties.callerKey, nonce: r.nonce, now: () => r.created, expiresIn: F.signatureLifetime },
  );
}

function requestSigned(request: HttpRequest): Signed {
  const [signatureInput] = fieldLines(request.headers, 'signature-input')!;
  const [signature] = fieldLines(request.headers, 'signature')!;
  const entry = [...parseSignatureInput([signatureInput!]).values()][0]!;
  return { signatureInput: signatureInput!, signature: signature!, base: signatureBase(request, entry.components, entry.signatureParams) };
}

/**
 * The service's signed response, as `signResponse` composes it (its ICT, Content-Digest over the body
 * as sent, the same components and parameters) but with the fixture's nonce instead of a random one.
 */
async function answer(parties: Parties, request: SignedRequest, r: ResponseInput, e2ee: Fields, body: Uint8Array) {
  const headers: Fields = {
    'content-type': [r.contentType],
    'content-encoding': ['aes128gcm'],
    'cache-control': ['no-store, no-transform'],
    ...e2ee,
    [OIDC2_PROFILE.tokenHeader]: [parties.values.serviceIct],
    'content-digest': [await createContentDigest(body)],
  };
  const response: HttpResponse = { status: r.status, headers, body };
  const components = [
    '@status',
    OIDC2_PROFILE.tokenHeader,
    ...OIDC2_PROFILE.responseCoveredWhenPresent.filter((field) => headers[field] !== undefined),
    'content-digest',
    '"@method";req',
    '"@path";req',
    '"@query";req',
    ...boundRequestFields(request.binding).map((field) => `"${field}";req`),
  ];
  const params = { created: r.created, expires: r.created + F.signatureLifetime, nonce: r.nonce, tag: OIDC2_PROFILE.tag, [OIDC2_PROFILE.requestNonceParam]: request.nonce };
  const signed = await signMessage(response, { label: 'sig', components, params, key: parties.serviceKey, request });
  headers['signature-input'] = [signed.signatureInput];
  headers['signature'] = [signed.signature];
  const values: Signed & Body = { body: toB64u(body), contentDigest: headers['content-digest']![0]!, signatureInput: signed.signatureInput, signature: signed.signature, base: signed.base };
  return { response, values };
}

async function tokenValues(issued: { token: string; exp: number; rekey: number }): Promise<TokenValues> {
  const { plaintext } = await compactDecrypt(issued.token, b64u(F.stek.k));
  return {
    header: Buffer.from(issued.token.split('.')[0]!, 'base64url').toString('utf8'),
    claims: new TextDecoder().decode(plaintext),
    compact: issued.token,
    field: serializeSession(issued.token, { exp: issued.exp, rekey: issued.rekey }),
  };
}

interface Built {
  values: ExampleValues;
  handshake: { request: SignedRequest; response: HttpResponse; keyPairs: Map<SuiteName, HpkeKeyPair> };
  session: { request: SignedRequest; response: HttpResponse };
  rekey: { request: SignedRequest; response: HttpResponse; keyPairs: Map<SuiteName, HpkeKeyPair> };
}

async function buildExample(parties: Parties, suite: Suite, engine: Engine): Promise<Built> {
  const ex = F.examples[suite];
  const { caller, service } = parties;
  const send = SENDERS[engine];

  // Handshake: a GET with the caller's key shares and no body.
  const h = ex.handshake;
  const offered = await offer(h.request.ikmC!);
  const hsRequest = await sendRequest(parties, h.request, { 'oidc2-key-share': [offered.field] });
  // The service: suite choice, KS, TH, info, SetupBaseS, the exports.
  const hsOffer = parseRequestKeyShare(fieldLines(hsRequest.headers, 'oidc2-key-share'));
  const hsShare = chooseSuite(hsOffer, F.servicePreference);
  const hsBinding: ExchangeBinding = { keyShare: hsOffer.canonical, nonce: hsRequest.binding.nonce!, audience: hsRequest.binding.audience!, caller, service };
  const TH = await handshakeTranscript({ suite: hsShare.suite, ...hsBinding });
  const info = handshakeInfo(TH);
  const hsSender = await send(hsShare.suite, hsShare.key, info, hex(h.ikmE!));
  const rk = await hsSender.export(E2EE_LABELS.exportSession, SESSION_KEY_LENGTH);
  const sid = await hsSender.export(E2EE_LABELS.exportSid, SID_LENGTH);
  const K_hs = await hsSender.export(E2EE_LABELS.exportResponse, SESSION_KEY_LENGTH);
  const hsIssued = await tokensAt(h.response.created).issue({ sid, rk, suite: hsShare.suite, epoch: 0, audience: F.audience, caller }, { iv: hex(h.response.tokenIv!) });
  const hsToken = await tokenValues(hsIssued);
  const hsKeyShare = serializeResponseKeyShare({ suite: hsShare.suite, key: hsSender.enc });
  const hsAnswer = await answer(
    parties,
    hsRequest,
    h.response,
    { 'oidc2-key-share': [hsKeyShare], 'oidc2-session': [hsToken.field] },
    await encryptBody(K_hs, utf8(h.response.body), { salt: hex(h.response.salt) }),
  );

  // A session request: the body under K_req, the response under K_rsp.
  const s = ex.session;
  const sessionField = serializeSession(hsIssued.token);
  const sKeyInput = { rk, sid, nonce: s.request.nonce, method: s.request.method, audience: `${F.audience}${s.request.path}` };
  const sKreq = await requestKey(sKeyInput);
  const sRequest = await sendRequest(
    parties,
    s.request,
    { 'content-type': [s.request.contentType!], 'content-encoding': ['aes128gcm'], 'oidc2-session': [sessionField] },
    await encryptBody(sKreq, utf8(s.request.body!), { salt: hex(s.request.salt!) }),
  );
  const sRspInput = { sid, nonce: sRequest.nonce, status: s.response.status };
  const sKrsp = await responseKey({ rk, ...sRspInput });
  const sAnswer = await answer(parties, sRequest, s.response, {}, await encryptBody(sKrsp, utf8(s.response.body), { salt: hex(s.response.salt) }));

  // A rekey: the session and a fresh key share; the body under K_req of the current root.
  const k = ex.rekey;
  const reoffered = await offer(k.request.ikmC!);
  const kKeyInput = { rk, sid, nonce: k.request.nonce, method: k.request.method, audience: `${F.audience}${k.request.path}` };
  const kKreq = await requestKey(kKeyInput);
  const kRequest = await sendRequest(
    parties,
    k.request,
    { 'content-type': [k.request.contentType!], 'content-encoding': ['aes128gcm'], 'oidc2-key-share': [reoffered.field], 'oidc2-session': [sessionField] },
    await encryptBody(kKreq, utf8(k.request.body!), { salt: hex(k.request.salt!) }),
  );
  // The service reads the session from the token, then runs SetupPSKS under its root.
  const session = await tokensAt(k.request.created).verify(hsIssued.token, F.audience);
  const kOffer = parseRequestKeyShare(fieldLines(kRequest.headers, 'oidc2-key-share'));
  const kShare = chooseSuite(kOffer, F.servicePreference);
  const kBinding: ExchangeBinding = { keyShare: kOffer.canonical, nonce: kRequest.binding.nonce!, audience: kRequest.binding.audience!, caller, service };
  const TH2 = await rekeyTranscript({ suite: kShare.suite, ...kBinding, sid: session.sid });
  const info2 = rekeyInfo(TH2);
  const pskId = rekeyPskId(session.sid);
  const kSender = await send(kShare.suite, kShare.key, info2, hex(k.ikmE!), { key: session.rk, id: pskId });
  const rk2 = await kSender.export(E2EE_LABELS.exportSession, SESSION_KEY_LENGTH);
  const K_rk = await kSender.export(E2EE_LABELS.exportResponse, SESSION_KEY_LENGTH);
  const kIssued = await tokensAt(k.response.created).issue(
    { sid: session.sid, rk: rk2, suite: kShare.suite, epoch: session.epoch + 1, sessionStart: session.sessionStart, audience: F.audience, caller },
    { iv: hex(k.response.tokenIv!) },
  );
  const kToken = await tokenValues(kIssued);
  const kKeyShare = serializeResponseKeyShare({ suite: kShare.suite, key: kSender.enc });
  const kAnswer = await answer(
    parties,
    kRequest,
    k.response,
    { 'oidc2-key-share': [kKeyShare], 'oidc2-session': [kToken.field] },
    await encryptBody(K_rk, utf8(k.response.body), { salt: hex(k.response.salt) }),
  );

  const requestValues = (request: SignedRequest, keyInfo: Uint8Array, key: Uint8Array) => ({
    K_req_info: toHex(keyInfo),
    K_req: toHex(key),
    body: toB64u(request.body!),
    contentDigest: fieldLines(request.headers, 'content-digest')![0]!,
    ...requestSigned(request),
  });

  return {
    values: {
      handshake: {
        pkC: offered.pkC,
        KS: hsOffer.canonical,
        suite: hsShare.suite,
        TH: toHex(TH),
        info: toHex(info),
        enc: toHex(hsSender.enc),
        rk: toHex(rk),
        sid: toHex(sid),
        K_hs: toHex(K_hs),
        request: requestSigned(hsRequest),
        token: hsToken,
        response: { keyShare: hsKeyShare, ...hsAnswer.values },
      },
      session: {
        request: requestValues(sRequest, requestKeyInfo(sKeyInput), sKreq),
        response: { K_rsp_info: toHex(responseKeyInfo(sRspInput)), K_rsp: toHex(sKrsp), ...sAnswer.values },
      },
      rekey: {
        pkC: reoffered.pkC,
        KS: kOffer.canonical,
        suite: kShare.suite,
        TH: toHex(TH2),
        info: toHex(info2),
        pskId: toHex(pskId),
        enc: toHex(kSender.enc),
        rk: toHex(rk2),
        K_rk: toHex(K_rk),
        request: requestValues(kRequest, requestKeyInfo(kKeyInput), kKreq),
        token: kToken,
        response: { keyShare: kKeyShare, ...kAnswer.values },
      },
    },
    handshake: { request: hsRequest, response: hsAnswer.response, keyPairs: offered.keyPairs },
    session: { request: sRequest, response: sAnswer.response },
    rekey: { request: kRequest, response: kAnswer.response, keyPairs: reoffered.keyPairs },
  };
}

interface BuiltSymmetric {
  values: SymmetricValues;
  request: HttpRequest;
  response: HttpResponse;
  token: string;
}

/** `info` of K_c2s and K_s2c: `label || 0x00 || lp(sid)`. */
function macInfo(label: string, sid: Uint8Array): Uint8Array {
  return Uint8Array.from([...utf8(label), 0, ...lp(sid)]);
}

/**
 * The symmetric exchange (docs/protocol.md section 7.11) after the x25519 rekey: the rekey's token as
 * a service with `e2ee.symmetric` issues it (`mac`, `ctx`, `ctyp`, `exp` bounded by the ICT's), a
 * session request signed by `signSessionMacRequest` under K_c2s, and its response composed as
 * `signSessionMacResponse` composes it, with the fixture's nonce, under K_s2c.
 */
async function buildSymmetric(parties: Parties, b: Built): Promise<BuiltSymmetric> {
  const ex = F.examples.x25519;
  const y = ex.symmetric!;
  const exp = b.values;
  const sid = hex(exp.handshake.sid);
  const rk = hex(exp.rekey.rk);
  const ict = F.callerIct.claims as { exp: number; ctx: string[] };
  const issued = await tokensAt(ex.rekey.response.created).issue(
    { sid, rk, suite: 'x25519', epoch: 1, sessionStart: ex.handshake.response.created, audience: F.audience, caller: parties.caller, mac: { ctx: ict.ctx, ctyp: 'ict', credentialExpiresAt: ict.exp } },
    { iv: hex(y.tokenIv) },
  );
  const { c2s, s2c } = await macKeys(rk, sid);
  const audience = `${F.audience}${y.request.path}`;
  const keyInput = { rk, sid, nonce: y.request.nonce, method: y.request.method, audience };
  const K_req = await requestKey(keyInput);
  const request = await signSessionMacRequest(
    {
      method: y.request.method,
      url: audience,
      headers: { host: [HOST], 'content-type': [y.request.contentType!], 'content-encoding': ['aes128gcm'], 'oidc2-session': [serializeSession(issued.token)] },
      body: await encryptBody(K_req, utf8(y.request.body!), { salt: hex(y.request.salt!) }),
    },
    { key: c2s, nonce: y.request.nonce, audience, expiresIn: F.signatureLifetime, now: () => y.request.created },
  );
  const rspInput = { sid, nonce: y.request.nonce, status: y.response.status };
  const K_rsp = await responseKey({ rk, ...rspInput });
  const body = await encryptBody(K_rsp, utf8(y.response.body), { salt: hex(y.response.salt) });
  const headers: Fields = {
    'content-type': [y.response.contentType],
    'content-encoding': ['aes128gcm'],
    'cache-control': ['no-store, no-transform'],
    'content-digest': [await createContentDigest(body)],
  };
  const response: HttpResponse = { status: y.response.status, headers, body };
  const components = ['@status', 'content-type', 'content-encoding', 'content-digest', '"@method";req', '"@path";req', '"@query";req', '"oidc2-session";req'];
  const params = { created: y.response.created, expires: y.response.created + F.signatureLifetime, nonce: y.response.nonce, tag: SESSION_MAC_TAG, [OIDC2_PROFILE.requestNonceParam]: y.request.nonce };
  const signed = await signMessage(response, { label: 'sig', components, params, key: await importKey(s2c, 'hmac-sha256', 'sign'), request });
  headers['signature-input'] = [signed.signatureInput];
  headers['signature'] = [signed.signature];
  return {
    values: {
      token: await tokenValues(issued),
      K_c2s_info: toHex(macInfo(E2EE_LABELS.macC2s, sid)),
      K_c2s: toHex(c2s),
      K_s2c_info: toHex(macInfo(E2EE_LABELS.macS2c, sid)),
      K_s2c: toHex(s2c),
      request: { K_req_info: toHex(requestKeyInfo(keyInput)), K_req: toHex(K_req), body: toB64u(request.body!), contentDigest: fieldLines(request.headers, 'content-digest')![0]!, ...requestSigned(request) },
      response: { K_rsp_info: toHex(responseKeyInfo(rspInput)), K_rsp: toHex(K_rsp), body: toB64u(body), contentDigest: headers['content-digest']![0]!, signatureInput: signed.signatureInput, signature: signed.signature, base: signed.base },
    },
    request,
    response,
    token: issued.token,
  };
}

// ---------------------------------------------------------------------------------------------
// The blocks docs/protocol.md prints, rendered from computed values.

const doc = readFileSync(join(__dirname, '../../docs/protocol.md'), 'utf8');

/** The fenced block that follows `<!-- example:NAME -->` in docs/protocol.md. */
function block(name: string): string {
  const m = new RegExp(`<!-- example:${name} -->\\s*\`\`\`[a-z]*\\n([\\s\\S]*?)\\n\`\`\``).exec(doc);
  if (!m) throw new Error(`docs/protocol.md has no example block ${name}`);
  return m[1]!;
}

type Line = [label: string, value: string];

/** Labelled lines, groups separated by an empty line. */
function table(...groups: Line[][]): string {
  return groups.map((group) => group.map(([label, value]) => `${label.padEnd(19)}${value}`).join('\n')).join('\n\n');
}

const FIELD_NAMES: Record<string, string> = {
  host: 'Host',
  'content-type': 'Content-Type',
  'content-encoding': 'Content-Encoding',
  'cache-control': 'Cache-Control',
  'oidc2-key-share': 'Oidc2-Key-Share',
  'oidc2-session': 'Oidc2-Session',
  'identity-certification-token': 'Identity-Certification-Token',
  'content-digest': 'Content-Digest',
  'signature-input': 'Signature-Input',
  signature: 'Signature',
};
const REASONS: Record<number, string> = { 200: 'OK', 201: 'Created' };

/** A message as it goes on the wire; a body is shown base64url-encoded. */
function wire(startLine: string, headers: Fields, body: Uint8Array | undefined): string {
  const lines = [startLine];
  for (const [name, values] of Object.entries(headers)) for (const value of values) lines.push(`${FIELD_NAMES[name] ?? name}: ${value}`);
  if (body && body.length > 0) lines.push('', toB64u(body));
  return lines.join('\n');
}

function partyBlocks(p: PartyValues): Record<string, string> {
  return {
    'e2ee-service-key': JSON.stringify(F.serviceKey),
    'e2ee-service-ict': p.serviceIct,
    'e2ee-parties': table([
      ['jkt(C)', p.jktC],
      ['id(C)', p.idC],
      ['jkt(S)', p.jktS],
      ['id(S)', p.idS],
      ['STEK', JSON.stringify(F.stek)],
    ]),
  };
}

function bodyLines(plaintext: string, salt: string, v: Body): Line[] {
  return [
    ['plaintext', plaintext],
    ['salt', salt],
    ['body', v.body],
    ['Content-Digest', v.contentDigest],
  ];
}

function tokenLines(keyShare: string, iv: string, t: TokenValues): Line[] {
  return [
    ['Oidc2-Key-Share', keyShare],
    ['token header', t.header],
    ['JWE IV', iv],
    ['token claims', t.claims],
    ['token', t.compact],
    // The field repeats the token; the response's signature base prints it whole.
    ['Oidc2-Session', t.field.replace(t.compact, '<token>')],
  ];
}

function requestLines(r: RequestInput, v: { K_req_info: string; K_req: string }): Line[] {
  return [
    ['N', r.nonce],
    ['METHOD', r.method],
    ['AUD', `${F.audience}${r.path}`],
    ['K_req info', v.K_req_info],
    ['K_req', v.K_req],
  ];
}

function signatureLines(request: Signed, response: Signed): Line[] {
  return [
    ['request Signature', request.signature],
    ['response Signature', response.signature],
  ];
}

function suiteBlocks(suite: Suite, v: ExampleValues, built?: Built): Record<string, string> {
  const ex = F.examples[suite];
  const { handshake: h, session: s, rekey: k } = ex;
  const blocks: Record<string, string> = {
    [`e2ee-${suite}-handshake`]: table(
      [
        ...Object.entries(h.request.ikmC!).flatMap(([name, ikm]): Line[] => [
          [`ikmC (${name})`, ikm],
          [`pkC (${name})`, v.handshake.pkC[name]!],
        ]),
        ['KS', v.handshake.KS],
        ['N', h.request.nonce],
        ['AUD', `${F.audience}${h.request.path}`],
        ['suite', v.handshake.suite],
        ['TH', v.handshake.TH],
        ['info', v.handshake.info],
        ['ikmE', h.ikmE!],
        ['enc', v.handshake.enc],
        ['rk', v.handshake.rk],
        ['sid', v.handshake.sid],
        ['K_hs', v.handshake.K_hs],
      ],
      tokenLines(v.handshake.response.keyShare, h.response.tokenIv!, v.handshake.token),
      [['STATUS', String(h.response.status)], ...bodyLines(h.response.body, h.response.salt, v.handshake.response)],
      signatureLines(v.handshake.request, v.handshake.response),
    ),
    [`e2ee-${suite}-handshake-request-base`]: v.handshake.request.base,
    [`e2ee-${suite}-handshake-response-base`]: v.handshake.response.base,
    [`e2ee-${suite}-session`]: table(
      [...requestLines(s.request, v.session.request), ...bodyLines(s.request.body!, s.request.salt!, v.session.request)],
      [
        ['STATUS', String(s.response.status)],
        ['K_rsp info', v.session.response.K_rsp_info],
        ['K_rsp', v.session.response.K_rsp],
        ...bodyLines(s.response.body, s.response.salt, v.session.response),
      ],
      signatureLines(v.session.request, v.session.response),
    ),
    [`e2ee-${suite}-session-request-base`]: v.session.request.base,
    [`e2ee-${suite}-session-response-base`]: v.session.response.base,
    [`e2ee-${suite}-rekey`]: table(
      [...requestLines(k.request, v.rekey.request), ...bodyLines(k.request.body!, k.request.salt!, v.rekey.request)],
      [
        ...Object.entries(k.request.ikmC!).flatMap(([name, ikm]): Line[] => [
          [`ikmC' (${name})`, ikm],
          [`pkC' (${name})`, v.rekey.pkC[name]!],
        ]),
        ["KS'", v.rekey.KS],
        ['suite', v.rekey.suite],
        ["TH'", v.rekey.TH],
        ["info'", v.rekey.info],
        ['psk_id', v.rekey.pskId],
        ["ikmE'", k.ikmE!],
        ["enc'", v.rekey.enc],
        ["rk'", v.rekey.rk],
        ['K_rk', v.rekey.K_rk],
      ],
      tokenLines(v.rekey.response.keyShare, k.response.tokenIv!, v.rekey.token),
      [['STATUS', String(k.response.status)], ...bodyLines(k.response.body, k.response.salt, v.rekey.response)],
      signatureLines(v.rekey.request, v.rekey.response),
    ),
    [`e2ee-${suite}-rekey-request-base`]: v.rekey.request.base,
    [`e2ee-${suite}-rekey-response-base`]: v.rekey.response.base,
  };
  // The x25519 handshake is also printed whole, as it goes on the wire.
  if (suite === 'x25519' && built) {
    const { request, response } = built.handshake;
    const url = new URL(request.url);
    blocks['e2ee-x25519-handshake-request'] = wire(`${request.method} ${url.pathname}${url.search} HTTP/1.1`, request.headers, request.body);
    blocks['e2ee-x25519-handshake-response'] = wire(`HTTP/1.1 ${response.status} ${REASONS[response.status]}`, response.headers, response.body);
  }
  return blocks;
}

function symmetricBlocks(v: SymmetricValues): Record<string, string> {
  const y = F.examples.x25519.symmetric!;
  return {
    'e2ee-x25519-symmetric': table(
      [
        ['token claims', v.token.claims],
        ['JWE IV', y.tokenIv],
        ['token', v.token.compact],
        ['Oidc2-Session', v.token.field.replace(v.token.compact, '<token>')],
      ],
      [
        ['K_c2s info', v.K_c2s_info],
        ['K_c2s', v.K_c2s],
        ['K_s2c info', v.K_s2c_info],
        ['K_s2c', v.K_s2c],
      ],
      [...requestLines(y.request, v.request), ...bodyLines(y.request.body!, y.request.salt!, v.request)],
      [
        ['STATUS', String(y.response.status)],
        ['K_rsp info', v.response.K_rsp_info],
        ['K_rsp', v.response.K_rsp],
        ...bodyLines(y.response.body, y.response.salt, v.response),
      ],
      signatureLines(v.request, v.response),
    ),
    'e2ee-x25519-symmetric-request-base': v.request.base,
    'e2ee-x25519-symmetric-response-base': v.response.base,
  };
}

// ---------------------------------------------------------------------------------------------
// The tests.

/** The caller's view of an exchange: what it sent, its own identity, the service as its response proves. */
async function callerBinding(parties: Parties, request: SignedRequest, response: HttpResponse, created: number): Promise<ExchangeBinding> {
  const identity: ServiceIdentity = await verifyResponse(response, {
    request,
    binding: request.binding,
    ictVerifier: parties.ictVerifier,
    expectedSubject: (F.serviceIct.claims as { sub: string }).sub,
    now: () => created,
  });
  return {
    keyShare: fieldLines(request.headers, 'oidc2-key-share')![0]!,
    nonce: request.nonce,
    audience: request.binding.audience!,
    caller: parties.caller,
    service: { iss: identity.issuer, sub: identity.subject, jkt: b64u(identity.thumbprint) },
  };
}

async function coreRecipient(suite: SuiteName, ikmC: string, enc: Uint8Array, info: Uint8Array, psk?: Psk) {
  const s = coreSuite(suite);
  const ctx = await s.createRecipientContext({ recipientKey: await s.kem.deriveKeyPair(hex(ikmC)), enc, info, ...(psk ? { psk: { key: psk.key, id: psk.id } } : {}) });
  return (context: string, length: number) => ctx.export(utf8(context), length).then((b) => toHex(new Uint8Array(b)));
}

describe.each(CRYPTO_PATHS)('docs/protocol.md section 7 worked example on %s', (pathName, web) => {
  onCryptoPath(web);
  let parties: Parties;
  const built = {} as Record<Suite, Built>;
  let symmetric: BuiltSymmetric;
  beforeAll(async () => {
    parties = await buildParties();
    for (const suite of SUITES) built[suite] = await buildExample(parties, suite, 'hpke');
    symmetric = await buildSymmetric(parties, built.x25519);
  });

  it('reuses the caller, issuer, ICT, audience and nonce style of section 6', () => {
    const { d: _d, ...callerPublic } = F.callerKey;
    expect(F.issuer).toBe(section6.issuer);
    expect(F.issuerKey).toEqual(section6.issuerKey);
    expect(F.callerKey).toEqual(section6.callerKey);
    expect(F.audience).toBe(section6.audience);
    expect(F.callerIct.claims).toMatchObject({ iss: section6.issuer, cnf: { jwk: { ...callerPublic } } });
    expect(parties.values.callerIct).toBe(block('ict'));
    const nonces = SUITES.flatMap((suite) => Object.values(F.examples[suite]).flatMap((phase: Phase) => [phase.request.nonce, phase.response.nonce]));
    expect(new Set(nonces).size).toBe(nonces.length);
    for (const nonce of [section6.nonce, ...nonces]) expect(toB64u(b64u(nonce))).toBe(nonce);
    for (const nonce of nonces) expect(b64u(nonce)).toHaveLength(b64u(section6.nonce).length);
  });

  it('derives the parties of the transcript from their verified ICTs as the fixture states them', () => {
    expect(parties.values).toEqual(F.expected.parties);
  });

  describe.each(SUITES)('%s', (suite) => {
    const ex = F.examples[suite];

    it.each(ENGINES)('every intermediate equals the fixture, with the service ephemeral fixed through %s', async (engine) => {
      const b = engine === 'hpke' ? built[suite] : await buildExample(parties, suite, engine);
      expect(b.values).toEqual(F.expected[suite]);
    });

    it('the caller derives the service keys: completeHandshake/completeRekey and a @hpke/core recipient', async () => {
      const exp = F.expected[suite];
      const b = built[suite];

      // Handshake: verify the response first, then SetupBaseR with the key pair of the suite chosen.
      const hs = await callerBinding(parties, b.handshake.request, b.handshake.response, ex.handshake.response.created);
      expect(hs.keyShare).toBe(exp.handshake.KS);
      const chosen = parseResponseKeyShare(fieldLines(b.handshake.response.headers, 'oidc2-key-share'));
      expect({ suite: chosen.suite, enc: toHex(chosen.key) }).toEqual({ suite: exp.handshake.suite, enc: exp.handshake.enc });
      const held = await completeHandshake(chosen, b.handshake.keyPairs, hs);
      const expectedHs = { suite: exp.handshake.suite, rk: exp.handshake.rk, sid: exp.handshake.sid, K_hs: exp.handshake.K_hs };
      expect({ suite: held.suite, rk: toHex(held.rk), sid: toHex(held.sid), K_hs: toHex(held.responseKey) }).toEqual(expectedHs);
      // The service's own acceptHandshake (random ephemeral) agrees with the caller on this binding too,
      // so the sender composed above with a fixed ephemeral is the service's path.
      const served = await acceptHandshake(chooseSuite(parseRequestKeyShare([hs.keyShare]), F.servicePreference), hs);
      expect(await completeHandshake({ suite: served.suite, key: served.enc }, b.handshake.keyPairs, hs)).toEqual({ suite: served.suite, rk: served.rk, sid: served.sid, responseKey: served.responseKey });
      const info = handshakeInfo(await handshakeTranscript({ suite: chosen.suite, ...hs }));
      const hsCore = await coreRecipient(chosen.suite, ex.handshake.request.ikmC![chosen.suite]!, chosen.key, info);
      expect({
        suite: chosen.suite,
        rk: await hsCore(E2EE_LABELS.exportSession, SESSION_KEY_LENGTH),
        sid: await hsCore(E2EE_LABELS.exportSid, SID_LENGTH),
        K_hs: await hsCore(E2EE_LABELS.exportResponse, SESSION_KEY_LENGTH),
      }).toEqual(expectedHs);

      // Rekey: SetupPSKR under the root and session id the caller holds.
      const rekeyBinding = await callerBinding(parties, b.rekey.request, b.rekey.response, ex.rekey.response.created);
      const rechosen = parseResponseKeyShare(fieldLines(b.rekey.response.headers, 'oidc2-key-share'));
      const session = { rk: held.rk, sid: held.sid };
      const next = await completeRekey(rechosen, b.rekey.keyPairs, rekeyBinding, session);
      const expectedRk = { suite: exp.rekey.suite, rk: exp.rekey.rk, sid: exp.handshake.sid, K_rk: exp.rekey.K_rk };
      expect({ suite: next.suite, rk: toHex(next.rk), sid: toHex(next.sid), K_rk: toHex(next.responseKey) }).toEqual(expectedRk);
      const rekeyed = await acceptRekey(chooseSuite(parseRequestKeyShare([rekeyBinding.keyShare]), F.servicePreference), rekeyBinding, session);
      expect(await completeRekey({ suite: rekeyed.suite, key: rekeyed.enc }, b.rekey.keyPairs, rekeyBinding, session)).toEqual({ suite: rekeyed.suite, rk: rekeyed.rk, sid: rekeyed.sid, responseKey: rekeyed.responseKey });
      const info2 = rekeyInfo(await rekeyTranscript({ suite: rechosen.suite, ...rekeyBinding, sid: held.sid }));
      const rkCore = await coreRecipient(rechosen.suite, ex.rekey.request.ikmC![rechosen.suite]!, rechosen.key, info2, { key: held.rk, id: rekeyPskId(held.sid) });
      expect({
        suite: rechosen.suite,
        rk: await rkCore(E2EE_LABELS.exportSession, SESSION_KEY_LENGTH),
        sid: exp.handshake.sid,
        K_rk: await rkCore(E2EE_LABELS.exportResponse, SESSION_KEY_LENGTH),
      }).toEqual(expectedRk);
    });

    it('the session tokens verify, belong to the caller and carry the fields their responses announce', async () => {
      const exp = F.expected[suite];
      const { epochSeconds, rekeySeconds } = F.sessionTokens;
      const sat = ex.handshake.response.created;
      for (const [token, at, epoch, iat, rk] of [
        [exp.handshake.token, ex.session.request.created, 0, ex.handshake.response.created, exp.handshake.rk],
        [exp.rekey.token, ex.rekey.response.created + 1, 1, ex.rekey.response.created, exp.rekey.rk],
      ] as const) {
        const session = await tokensAt(at).verify(token.compact, F.audience);
        expect(session).toMatchObject({ sid: hex(exp.handshake.sid), rk: hex(rk), suite, epoch, sessionStart: sat, issuedAt: iat, expiresAt: iat + epochSeconds, audience: F.audience });
        expect(() => checkSessionBinding(session, parties.caller)).not.toThrow();
        expect(token.header).toBe(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid: F.stek.kid, typ: 'oidc2-session+jwt' }));
        expect(parseResponseSession([token.field])).toEqual({ token: token.compact, exp: iat + epochSeconds, rekey: iat + rekeySeconds });
      }
      const b = built[suite];
      expect(fieldLines(b.handshake.response.headers, 'oidc2-session')).toEqual([exp.handshake.token.field]);
      expect(fieldLines(b.rekey.response.headers, 'oidc2-session')).toEqual([exp.rekey.token.field]);
      // Both requests present the handshake's token, without parameters.
      for (const request of [b.session.request, b.rekey.request]) expect(fieldLines(request.headers, 'oidc2-session')).toEqual([exp.handshake.token.compact]);
    });

    it('every printed body decrypts under its key to its plaintext; the service reads request keys from the token', async () => {
      const exp = F.expected[suite];
      const decrypt = async (key: string, body: string) => new TextDecoder().decode(await decryptBody(hex(key), b64u(body)));
      expect(await decrypt(exp.handshake.K_hs, exp.handshake.response.body)).toBe(ex.handshake.response.body);
      expect(await decrypt(exp.session.request.K_req, exp.session.request.body)).toBe(ex.session.request.body);
      expect(await decrypt(exp.session.response.K_rsp, exp.session.response.body)).toBe(ex.session.response.body);
      expect(await decrypt(exp.rekey.request.K_req, exp.rekey.request.body)).toBe(ex.rekey.request.body);
      expect(await decrypt(exp.rekey.K_rk, exp.rekey.response.body)).toBe(ex.rekey.response.body);
      for (const [phase, r] of [
        ['session', ex.session.request],
        ['rekey', ex.rekey.request],
      ] as const) {
        const session = await tokensAt(r.created).verify(exp.handshake.token.compact, F.audience);
        const key = await requestKey({ rk: session.rk, sid: session.sid, nonce: r.nonce, method: r.method, audience: `${F.audience}${r.path}` });
        expect(toHex(key)).toBe(exp[phase].request.K_req);
      }
    });

    it('the requests authenticate; the responses verify and are composed as signResponse composes them', async () => {
      const b = built[suite];
      for (const [phase, message] of [
        ['handshake', b.handshake],
        ['session', b.session],
        ['rekey', b.rekey],
      ] as const) {
        const r = ex[phase];
        const auth = createAuthenticator({ issuers: [{ issuer: F.issuer, jwks: { keys: [issuerPublic] } }], audiences: [F.audience], now: () => r.request.created + 1 });
        await expect(auth.authenticate(message.request)).resolves.toMatchObject({ subject: 'alice@example.com', contexts: ['mfa'] });
        await expect(
          verifyResponse(message.response, { request: message.request, binding: message.request.binding, ictVerifier: parties.ictVerifier, now: () => r.response.created }),
        ).resolves.toMatchObject({ issuer: F.issuer, subject: (F.serviceIct.claims as { sub: string }).sub });
        // signResponse draws a random nonce; with that nonce in place of the fixture's, it signs the same input.
        const fields = await signResponse(message.response, message.request, message.request.binding, { ict: parties.values.serviceIct, key: parties.serviceKey }, { now: () => r.response.created, expiresIn: F.signatureLifetime });
        const theirs = fields['signature-input']![0]!;
        const nonce = [...parseSignatureInput([theirs]).values()][0]!.params.nonce as string;
        expect(fieldLines(message.response.headers, 'signature-input')![0]!.replace(`nonce="${r.response.nonce}"`, `nonce="${nonce}"`)).toBe(theirs);
        expect(fields['content-digest']).toEqual(fieldLines(message.response.headers, 'content-digest'));
      }
    });
  });

  describe('symmetric session authentication (x25519)', () => {
    const y = F.examples.x25519.symmetric!;

    it('the token, K_c2s, K_s2c, both bodies and both signatures equal the fixture', () => {
      expect(symmetric.values).toEqual(F.expected.symmetric);
    });

    it("the token allows the mode, with the ICT's contexts and an exp no later than the ICT's", async () => {
      const session = await tokensAt(y.request.created).verify(symmetric.token, F.audience);
      expect(session.mac).toEqual({ ctx: ['mfa'], ctyp: 'ict' });
      expect(session.expiresAt).toBe(Math.min(F.examples.x25519.rekey.response.created + F.sessionTokens.epochSeconds, (F.callerIct.claims as { exp: number }).exp));
      expect(JSON.parse(symmetric.values.token.claims)).toMatchObject({ mac: true, ctx: ['mfa'], ctyp: 'ict', ep: 1 });
    });

    it('the request authenticates with its MAC alone, as the caller the token states; a MAC under K_s2c does not', async () => {
      const host = { enabled: true, tokens: tokensAt(y.request.created + 1), bases: audienceMatcher([F.audience], 'audiences') };
      const authenticator = () => createAuthenticator({ issuers: [{ issuer: F.issuer, jwks: { keys: [issuerPublic] } }], audiences: [F.audience], now: () => y.request.created + 1 });
      const identity = await authenticator().authenticate(symmetric.request, { sessionMac: { host, routeAllows: true } });
      expect(identity).toMatchObject({ subject: 'alice@example.com', issuer: F.issuer, contexts: ['mfa'], thumbprint: toB64u(parties.caller.jkt), sessionMac: true });
      expect(identity.publicKey).toBeUndefined();
      const wrongKey = await signSessionMacRequest(
        { ...symmetric.request, headers: { ...symmetric.request.headers } },
        { key: hex(symmetric.values.K_s2c), nonce: y.request.nonce, audience: `${F.audience}${y.request.path}`, expiresIn: F.signatureLifetime, now: () => y.request.created },
      );
      await expect(authenticator().authenticate(wrongKey, { sessionMac: { host, routeAllows: true } })).rejects.toMatchObject({ code: 'signature_invalid' });
    });

    it('the response verifies under K_s2c and not under K_c2s, is composed as signSessionMacResponse composes it, and both bodies decrypt', async () => {
      const now = () => y.response.created;
      await expect(verifySessionMacResponse(symmetric.response, { request: symmetric.request, nonce: y.request.nonce, key: hex(symmetric.values.K_s2c), now })).resolves.toBeUndefined();
      await expect(verifySessionMacResponse(symmetric.response, { request: symmetric.request, nonce: y.request.nonce, key: hex(symmetric.values.K_c2s), now })).rejects.toMatchObject({ code: 'response_signature_invalid' });
      const { 'signature-input': _i, signature: _s, 'content-digest': _d, ...unsigned } = symmetric.response.headers;
      const fields = await signSessionMacResponse({ ...symmetric.response, headers: unsigned }, symmetric.request, y.request.nonce, hex(symmetric.values.K_s2c), { now });
      const theirs = fields['signature-input']![0]!;
      const nonce = [...parseSignatureInput([theirs]).values()][0]!.params.nonce as string;
      expect(symmetric.values.response.signatureInput.replace(`nonce="${y.response.nonce}"`, `nonce="${nonce}"`)).toBe(theirs);
      expect(fields['content-digest']).toEqual([symmetric.values.response.contentDigest]);
      const decrypt = async (key: string, body: string) => new TextDecoder().decode(await decryptBody(hex(key), b64u(body)));
      expect(await decrypt(symmetric.values.request.K_req, symmetric.values.request.body)).toBe(y.request.body);
      expect(await decrypt(symmetric.values.response.K_rsp, symmetric.values.response.body)).toBe(y.response.body);
    });
  });

  it('docs/protocol.md prints every block as computed, and no block the example does not compute', () => {
    const rendered: Record<string, string> = { ...partyBlocks(parties.values), ...symmetricBlocks(symmetric.values) };
    for (const suite of SUITES) Object.assign(rendered, suiteBlocks(suite, built[suite].values, built[suite]));
    if (process.env.PRINT_EXAMPLE && pathName === 'node:crypto') {
      const expected = { parties: parties.values, x25519: built.x25519.values, p256: built.p256.values, symmetric: symmetric.values };
      const markdown = Object.entries(rendered).map(([name, text]) => `<!-- example:${name} -->\n\`\`\`${name.endsWith('-request') || name.endsWith('-response') ? 'http' : name === 'e2ee-service-key' ? 'json' : 'text'}\n${text}\n\`\`\``);
      process.stdout.write(`${JSON.stringify(expected, null, 2)}\n\n${markdown.join('\n\n')}\n`);
    }
    for (const [name, text] of Object.entries(rendered)) expect([name, block(name)]).toEqual([name, text]);
    const printed = [...doc.matchAll(/<!-- example:(e2ee-[a-z0-9-]+) -->/g)].map((m) => m[1]);
    expect(printed.sort()).toEqual(Object.keys(rendered).sort());
  });
});
