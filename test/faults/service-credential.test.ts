// Faults of the service's own credential provider and of the service's clock, on a real server:
// a provider that throws or hangs never leaves a request hanging or an unsigned success on the
// wire, and the service recovers when the provider does; a clock that jumps back or forward
// refuses requests with coded 401s while it is off and serves again when it is right.
import type { CredentialInput } from '@oidc2/core';
import { startFramework } from '../support/frameworks';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../support/credentials';
import { signedGet } from './support';

let op: TestIssuer;
let alice: TestKey;
let serviceKey: TestKey;
beforeAll(async () => {
  op = await newIssuer('https://op.example');
  alice = await newKey('ES256');
  serviceKey = await newKey('ES256');
});

describe('service credential provider faults', () => {
  it('throws, then hangs, then answers: 501 response_signing_unavailable promptly, within 5 s when hanging, then signed 200s', async () => {
    let behaviour: 'throw' | 'hang' | 'ok' = 'throw';
    const provider = async (): Promise<CredentialInput> => {
      if (behaviour === 'throw') throw new Error('the credential store is down');
      if (behaviour === 'hang') return new Promise<never>(() => {});
      return { ict: await op.mint(serviceKey, { subject: 'service', lifetime: 600 }), privateKey: serviceKey.privateJwk };
    };
    const service = await startFramework('koa', (url) => ({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], audiences: [url], credential: provider, e2ee: false }));
    try {
      const thrown = await signedGet(`${service.url}/whoami`, op, alice, { signResponse: true });
      expect(thrown).toMatchObject({ status: 501, code: 'response_signing_unavailable' });
      behaviour = 'hang';
      await new Promise((r) => setTimeout(r, 1_100)); // past the 1 s in which a failure is answered without asking again
      const hung = await signedGet(`${service.url}/whoami`, op, alice, { signResponse: true });
      expect(hung).toMatchObject({ status: 501, code: 'response_signing_unavailable' });
      expect(hung.ms).toBeGreaterThanOrEqual(4_500);
      expect(hung.ms).toBeLessThan(9_000);
      behaviour = 'ok';
      await new Promise((r) => setTimeout(r, 1_100));
      expect(await signedGet(`${service.url}/whoami`, op, alice, { signResponse: true })).toMatchObject({ status: 200 });
      // Once held, the credential outlives a provider outage until its renewal is due.
      behaviour = 'throw';
      expect(await signedGet(`${service.url}/whoami`, op, alice, { signResponse: true })).toMatchObject({ status: 200 });
    } finally {
      await service.close();
    }
  }, 20_000);
});

describe('clock jumps', () => {
  it('a service clock 10 minutes behind or ahead refuses with coded 401s, and serves again once it is right', async () => {
    let skew = 0;
    const service = await startFramework('express', (url) => ({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], audiences: [url], now: () => Date.now() / 1000 + skew }));
    try {
      const get = () => signedGet(`${service.url}/whoami`, op, alice);
      expect(await get()).toMatchObject({ status: 200 });
      skew = -600;
      const behind = await get();
      expect(behind.status).toBe(401);
      expect(['ict_not_yet_valid', 'signature_not_yet_valid']).toContain(behind.code);
      skew = 600;
      const ahead = await get();
      expect(ahead.status).toBe(401);
      expect(['ict_expired', 'signature_expired']).toContain(ahead.code);
      skew = 30; // within the 60 s leeway
      expect(await get()).toMatchObject({ status: 200 });
      skew = 0;
      expect(await get()).toMatchObject({ status: 200 });
    } finally {
      await service.close();
    }
  });
});
