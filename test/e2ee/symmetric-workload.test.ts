// Symmetric session authentication for a workload (docs/protocol.md section 7.11 with a WIMSE caller):
// a service that holds only a WIT, with the mode on, and @oidc2/client with a WIT and the mode on,
// on real Express. MAC-signed requests are answered under K_s2c; a refusal of the mode is signed with
// the service's WIT, so the client verifies it and sends the request again with its own signature.
import type { JWK } from 'jose';
import { createClient } from '@oidc2/client';
import type { Identity, Oidc2Options } from '@oidc2/core';
import { newKey } from '../support/credentials';
import { startFramework, type FrameworkService } from '../support/frameworks';
import { newTrustDomain, type TestTrustDomain } from '../../packages/core/test/support/wit';

let td: TestTrustDomain;
const services: FrameworkService[] = [];
afterAll(async () => Promise.all(services.map((s) => s.close())));

beforeAll(async () => {
  td = await newTrustDomain('workloads.example');
});

async function workloadService(policy?: Oidc2Options['policy']): Promise<FrameworkService> {
  const key = await newKey('ES256');
  const wit = await td.mint(key, { subject: 'spiffe://workloads.example/ledger', lifetime: 3600 });
  const service = await startFramework('express', (url) => ({
    issuers: [{ issuer: 'https://op.example.test', jwks: td.jwks }],
    audiences: [url],
    workloads: { trustDomains: [{ trustDomain: td.trustDomain, jwks: td.jwks }] },
    credentials: { wit: { wit, privateKey: key.privateJwk } },
    e2ee: { symmetric: true },
    ...(policy ? { policy } : {}),
  }));
  services.push(service);
  return service;
}

function workloadClient(seen: string[]) {
  return createClient({
    proof: 'wimse-signature',
    serviceTrustDomains: [{ trustDomain: td.trustDomain, jwks: td.jwks }],
    getWit: async (publicJwk: JWK) => {
      const holder = await newKey('ES256');
      // The WIT certifies the client's own key: mint it for the key the client asks for.
      return td.mint({ ...holder, publicJwk, alg: (publicJwk as { alg?: string }).alg ?? 'ES256' } as typeof holder, { subject: 'spiffe://workloads.example/orders', lifetime: 600 });
    },
    encryption: 'required',
    e2ee: { symmetric: true },
    fetch: (input: RequestInfo | URL, init?: RequestInit) => {
      const headers = new Headers(input instanceof Request ? input.headers : init?.headers);
      seen.push(headers.get('signature-input') ?? '');
      return fetch(input, init);
    },
  } as never);
}

describe('a workload in symmetric mode, with a service that holds only a WIT', () => {
  it('sends MAC-signed session requests after its first, and gets each answer verified and decrypted', async () => {
    const service = await workloadService();
    const seen: string[] = [];
    const call = workloadClient(seen);
    for (let i = 0; i < 3; i++) {
      const response = await call(`${service.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n: i }) });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ caller: 'spiffe://workloads.example/orders', echo: { n: i } });
    }
    expect(seen.filter((s) => s.includes('tag="oidc2-session"')).length).toBeGreaterThanOrEqual(2);
  });

  it('a route that refuses the mode answers with a refusal signed with the WIT: the client verifies it and resends with its own signature', async () => {
    const service = await workloadService({ sessionMac: false });
    const seen: string[] = [];
    const call = workloadClient(seen);
    for (let i = 0; i < 2; i++) {
      const response = await call(`${service.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n: i }) });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ caller: 'spiffe://workloads.example/orders', echo: { n: i } });
    }
    // The second request tried the mode, was refused, and was sent again with the public-key signature.
    expect(seen.some((s) => s.includes('tag="oidc2-session"'))).toBe(true);
  });
});
