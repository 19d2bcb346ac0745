import { createIctVerifier } from '@oidc2/core';
import { newIssuer, newKey } from '../support/credentials';
import { FRAMEWORKS, startFramework, type FrameworkService } from '../support/frameworks';
import { openE2ee, prepareE2ee, sendE2ee } from '../support/e2ee-caller';

describe.each(FRAMEWORKS)('%s e2ee smoke', (framework) => {
  let svc: FrameworkService;
  let who: { key: Awaited<ReturnType<typeof newKey>>; ict: string };
  let verifier: ReturnType<typeof createIctVerifier>;
  beforeAll(async () => {
    const callers = await newIssuer('https://op.example.test');
    const services = await newIssuer('https://attest.example.test', 'Ed25519');
    const serviceKey = await newKey('Ed25519');
    const serviceIct = await services.mint(serviceKey, { subject: 'svc', lifetime: 3600 });
    verifier = createIctVerifier({ issuers: [{ issuer: services.issuer, jwks: services.jwks }] });
    const key = await newKey();
    who = { key, ict: await callers.mint(key) };
    svc = await startFramework(framework, (url) => ({
      issuers: [{ issuer: callers.issuer, jwks: callers.jwks }],
      audiences: [url],
      credential: { ict: serviceIct, privateKey: serviceKey.privateJwk },
    }));
  });
  afterAll(() => svc.close());

  it('handshake, session, rekey', async () => {
    const hs = await prepareE2ee(who, { method: 'GET', url: `${svc.url}/whoami` });
    const r1 = await sendE2ee(svc.url, hs.request);
    expect(r1.status).toBe(200);
    const o1 = await openE2ee(hs, r1, verifier, who);
    expect(JSON.parse(new TextDecoder().decode(o1.plaintext)).caller).toBe('alice');
    const s = await prepareE2ee(who, { method: 'POST', url: `${svc.url}/echo`, session: o1.session, body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    const r2 = await sendE2ee(svc.url, s.request);
    expect(r2.status).toBe(200);
    const o2 = await openE2ee(s, r2, verifier, who);
    expect(JSON.parse(new TextDecoder().decode(o2.plaintext)).echo).toEqual({ a: 1 });
    const rk = await prepareE2ee(who, { method: 'POST', url: `${svc.url}/echo`, session: o1.session, offer: ['p256'], body: '{"b":2}', headers: { 'content-type': 'application/json' } });
    const r3 = await sendE2ee(svc.url, rk.request);
    const o3 = await openE2ee(rk, r3, verifier, who);
    expect(o3.mode).toBe('rekey');
    expect(JSON.parse(new TextDecoder().decode(o3.plaintext)).echo).toEqual({ b: 2 });
    const ep = await prepareE2ee(who, { method: 'POST', url: `${svc.url}/.well-known/oidc2-session` });
    const r4 = await sendE2ee(svc.url, ep.request);
    expect(r4.status).toBe(204);
    const o4 = await openE2ee(ep, r4, verifier, who);
    expect(o4.mode).toBe('handshake');
  });
});
