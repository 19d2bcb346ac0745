// Rules each adapter once got wrong, over real sockets:
// - docs/protocol.md section 7.7: a service never answers an e2ee request with 206 (the route never sees `Range`);
// - docs/protocol.md section 7.9 step 5 / 5.11: a service without end-to-end encryption refuses the e2ee fields
//   with e2ee_unavailable instead of answering in clear;
// - docs/protocol.md section 7.3: the session endpoint is `POST <base>/.well-known/oidc2-session`, not any path that
//   ends in it.
import { createIctVerifier, fieldLines, requestBinding, verifyResponse, type IctVerifier } from '@oidc2/core';
import { newIssuer, newKey, type TestKey } from '../support/credentials';
import { FRAMEWORKS, RANGED_RESOURCE, startFramework, type FrameworkService } from '../support/frameworks';
import { openE2ee, openSession, prepareE2ee, problemOf, sendE2ee } from '../support/e2ee-caller';

describe.each(FRAMEWORKS)('%s: e2ee regressions', (framework) => {
  let svc: FrameworkService;
  let plain: FrameworkService;
  let verifier: IctVerifier;
  let who: { key: TestKey; ict: string };
  beforeAll(async () => {
    const callers = await newIssuer('https://op.example.test', 'Ed25519');
    const services = await newIssuer('https://attest.example.test', 'Ed25519');
    const serviceKey = await newKey('Ed25519');
    const serviceIct = await services.mint(serviceKey, { subject: 'svc', lifetime: 3600 });
    verifier = createIctVerifier({ issuers: [{ issuer: services.issuer, jwks: services.jwks }] });
    const key = await newKey('Ed25519');
    who = { key, ict: await callers.mint(key) };
    const options = (url: string) => ({ issuers: [{ issuer: callers.issuer, jwks: callers.jwks }], audiences: [url], credential: { ict: serviceIct, privateKey: serviceKey.privateJwk } });
    svc = await startFramework(framework, options);
    plain = await startFramework(framework, (url) => ({ ...options(url), e2ee: false as const }));
  });
  afterAll(() => Promise.all([svc.close(), plain.close()]));

  it.each(['session', 'handshake'] as const)('in a %s: never 206, the whole resource, no-store, no-transform', async (mode) => {
    const session = mode === 'session' ? await openSession(who, svc.url, verifier) : undefined;
    const p = await prepareE2ee(who, { method: 'GET', url: `${svc.url}/ranged`, headers: { range: 'bytes=0-9' }, ...(session ? { session } : {}) });
    const res = await sendE2ee(svc.url, p.request);
    expect(res.status).toBe(200);
    expect(fieldLines(res.headers, 'content-range')).toBeUndefined();
    expect(fieldLines(res.headers, 'cache-control')).toEqual(['no-store, no-transform']);
    expect((await openE2ee(p, res, verifier, who)).plaintext).toEqual(RANGED_RESOURCE);
  });

  it.each(['key share', 'session'] as const)('a %s at a service with e2ee: false: signed 400 e2ee_unavailable', async (field) => {
    const session = field === 'session' ? await openSession(who, svc.url, verifier) : undefined;
    // The token comes from the e2ee service; the plain one cannot read it and must not ignore it.
    const p = await prepareE2ee(who, { method: 'GET', url: `${plain.url}/whoami`, ...(session ? { session } : {}) });
    const res = await sendE2ee(plain.url, p.request);
    expect({ status: res.status, code: problemOf(res)?.code }).toEqual({ status: 400, code: 'e2ee_unavailable' });
    await verifyResponse(res, { request: p.request, binding: requestBinding(p.request)!, ictVerifier: verifier });
  });

  it('POST <base>/nested/.well-known/oidc2-session is an ordinary route (the app answers 404), not the session endpoint', async () => {
    const p = await prepareE2ee(who, { method: 'POST', url: `${svc.url}/nested/.well-known/oidc2-session` });
    const res = await sendE2ee(svc.url, p.request);
    expect(res.status).toBe(404);
  });
});
