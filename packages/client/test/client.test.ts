import { createClient, VerifiedResponse, type ClientOptions } from '@oidc2/client';
import type { Oidc2Options } from '@oidc2/core';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../../../test/support/credentials';
import { listen, startNodeService, startTamperProxy, type RunningServer } from '../../../test/support/node-service';
import { settledCode as codeOf } from '../../../test/support/error-code';

let clock = Math.floor(Date.now() / 1000);
const now = () => clock;

let users: TestIssuer;
let services: TestIssuer;
let serviceKey: TestKey;
const servers: RunningServer[] = [];

beforeAll(async () => {
  users = await newIssuer('https://op.test.example');
  services = await newIssuer('https://attest.test.example');
  serviceKey = await newKey('ES256');
});

afterEach(async () => {
  clock = Math.floor(Date.now() / 1000);
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function service(extra: Partial<Oidc2Options> = {}, subject = 'spiffe://test.example/orders', handler?: Parameters<typeof startNodeService>[1]) {
  const ict = await services.mint(serviceKey, { subject, now: clock, lifetime: 3600 });
  const running = await startNodeService(
    { issuers: [{ issuer: users.issuer, jwks: users.jwks }], credential: { ict, privateKey: serviceKey.privateJwk }, now, ...extra },
    handler,
  );
  servers.push(running);
  return running;
}

function client(extra: Partial<ClientOptions> = {}) {
  return createClient({
    serviceIssuers: [{ issuer: services.issuer, jwks: services.jwks }],
    getIct: (jwk) => users.mint(jwk, { subject: 'alice', now: clock }),
    now,
    ...extra,
  } as ClientOptions);
}

describe('createClient: requests and verified responses', () => {
  it.each([
    ['http-signature', 'ES256'],
    ['http-signature', 'Ed25519'],
    ['dpop', 'ES256'],
    ['dpop', 'Ed25519'],
  ] as const)('%s with %s: the service sees the caller, the caller sees the verified service', async (proof, algorithm) => {
    const svc = await service();
    const api = client({ proof, algorithm, expectedService: 'spiffe://test.example/orders' });
    const response = await api(`${svc.url}/orders/7?x=1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"qty":2}' });
    expect(response).toBeInstanceOf(VerifiedResponse);
    expect(response).toBeInstanceOf(Response);
    expect(response.status).toBe(200);
    expect(response.url).toBe(`${svc.url}/orders/7?x=1`);
    expect(response.service.subject).toBe('spiffe://test.example/orders');
    expect(response.service.issuer).toBe(services.issuer);
    expect(response.service.thumbprint).toBe(serviceKey.thumbprint);
    expect(await response.json()).toEqual({ caller: 'alice', proof: proof === 'dpop' ? 'dpop' : 'http-signature', echo: '{"qty":2}' });
  });

  it('accepts a Request object and a GET without body', async () => {
    const svc = await service();
    const api = client();
    const response = await api(new Request(`${svc.url}/a`));
    expect((await response.json()).caller).toBe('alice');
  });

  it('hands over a null body for a 204 and keeps the status of a verified error response', async () => {
    const svc = await service({}, undefined, (_identity, request) => (request.url === '/empty' ? { status: 204 } : { status: 409, body: '{"conflict":true}' }));
    const api = client();
    const empty = await api(`${svc.url}/empty`);
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
    const conflict = await api(`${svc.url}/x`);
    expect(conflict.status).toBe(409);
    expect(await conflict.json()).toEqual({ conflict: true });
  });

  it('returns the service’s signed rejection: a 403 from a route policy is a verified answer', async () => {
    const svc = await service({ policy: { contexts: ['payments'] } });
    const response = await client()(`${svc.url}/pay`);
    expect(response.status).toBe(403);
    expect((await response.json()).code).toBe('context_required');
    expect(response.service.subject).toBe('spiffe://test.example/orders');
  });
});

describe('createClient: bad responses are rejections', () => {
  it('rejects a response from an unexpected service (string, list and function forms)', async () => {
    const svc = await service({}, 'spiffe://test.example/other');
    expect(await codeOf(client({ expectedService: 'spiffe://test.example/orders' })(`${svc.url}/a`))).toBe('response_untrusted');
    expect(await codeOf(client({ expectedService: ['spiffe://test.example/a', 'spiffe://test.example/b'] })(`${svc.url}/a`))).toBe('response_untrusted');
    const byHost = client({ expectedService: (url) => (url.pathname.startsWith('/orders') ? 'spiffe://test.example/orders' : undefined) });
    expect(await codeOf(byHost(`${svc.url}/orders/1`))).toBe('response_untrusted');
    expect((await byHost(`${svc.url}/public`)).service.subject).toBe('spiffe://test.example/other');
  });

  it('rejects a response signed under an ICT from an issuer not trusted for services', async () => {
    const svc = await service();
    const api = client({ serviceIssuers: [{ issuer: users.issuer, jwks: users.jwks }] });
    expect(await codeOf(api(`${svc.url}/a`))).toBe('response_untrusted');
  });

  it('rejects an unsigned response, whatever its status', async () => {
    const plain = await listen((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
    servers.push(plain);
    expect(await codeOf(client()(`${plain.url}/a`))).toBe('response_unsigned');
    expect(await codeOf(client({ proof: 'dpop' })(`${plain.url}/a`))).toBe('response_unsigned');
  });

  it.each(['http-signature', 'dpop'] as const)('%s: rejects a response whose body was changed on the way', async (proof) => {
    const proxy = await startTamperProxy();
    servers.push(proxy);
    const svc = await service({ audiences: [proxy.url] });
    proxy.target = svc.url;
    const api = client({ proof });
    expect(await codeOf(api(`${proxy.url}/a`))).toBe('response_signature_invalid');
    proxy.tamper = false;
    expect((await api(`${proxy.url}/a`)).status).toBe(200);
  });

  it('rejects a genuine response replayed for another request', async () => {
    let target = '';
    let recorded: { status: number; headers: [string, string][]; body: ArrayBuffer } | undefined;
    const replayer = await listen((req, res) => {
      void (async () => {
        if (!recorded) {
          const headers = new Headers();
          for (const [n, v] of Object.entries(req.headersDistinct)) if (n !== 'host' && n !== 'connection') for (const x of v ?? []) headers.append(n, x);
          const upstream = await fetch(target + req.url, { headers });
          const copied: [string, string][] = [];
          upstream.headers.forEach((value, name) => copied.push([name, value]));
          recorded = { status: upstream.status, headers: copied, body: await upstream.arrayBuffer() };
        }
        res.statusCode = recorded.status;
        for (const [n, v] of recorded.headers) if (n !== 'content-length' && n !== 'connection' && n !== 'keep-alive') res.setHeader(n, v);
        res.end(Buffer.from(recorded.body));
      })();
    });
    servers.push(replayer);
    target = (await service({ audiences: [replayer.url] })).url;
    const api = client();
    expect((await api(`${replayer.url}/a`)).status).toBe(200);
    expect(await codeOf(api(`${replayer.url}/a`))).toBe('response_signature_invalid');
  });

  it('rejects a response body larger than maxResponseBytes', async () => {
    const svc = await service({}, undefined, () => ({ body: JSON.stringify({ pad: 'x'.repeat(5000) }) }));
    expect(await codeOf(client({ maxResponseBytes: 1000 })(`${svc.url}/a`))).toBe('response_signature_invalid');
    expect((await client({ maxResponseBytes: 10000 })(`${svc.url}/a`)).status).toBe(200);
  });

  it('does not follow redirects: a signed 3xx is returned as it is', async () => {
    const svc = await service({}, undefined, () => ({ status: 302, headers: { location: '/elsewhere' } }));
    const response = await client()(`${svc.url}/a`);
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/elsewhere');
    expect(svc.hits).toBe(1);
  });
});

describe('createClient: DPoP server nonces', () => {
  it('retries once with the nonce the service asks for, then keeps using the latest nonce', async () => {
    const svc = await service({ dpopNonces: true });
    const api = client({ proof: 'dpop' });
    const first = await api(`${svc.url}/a`);
    expect(first.status).toBe(200);
    expect(svc.hits).toBe(2);
    await api(`${svc.url}/b`);
    expect(svc.hits).toBe(3);
  });

  it('retries only once', async () => {
    let hits = 0;
    const nagging = await listen((_req, res) => {
      hits++;
      res.statusCode = 401;
      res.setHeader('dpop-nonce', `n${hits}`);
      res.setHeader('www-authenticate', 'DPoP error="use_dpop_nonce"');
      res.end();
    });
    servers.push(nagging);
    expect(await codeOf(client({ proof: 'dpop' })(`${nagging.url}/a`))).toBe('response_unsigned');
    expect(hits).toBe(2);
  });
});

describe('createClient: key pair and ICT', () => {
  it('generates a non-extractable private key by default, an extractable one on request', async () => {
    const generate = jest.spyOn(globalThis.crypto.subtle, 'generateKey');
    try {
      const jwk = await client().publicKey();
      expect(generate).toHaveBeenLastCalledWith({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
      expect(Object.keys(jwk).sort()).toEqual(['crv', 'kty', 'x', 'y']);
      await client({ algorithm: 'Ed25519', extractable: true }).publicKey();
      expect(generate).toHaveBeenLastCalledWith({ name: 'Ed25519' }, true, ['sign', 'verify']);
    } finally {
      generate.mockRestore();
    }
  });

  it('uses a supplied key pair', async () => {
    const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    const exported = await crypto.subtle.exportKey('jwk', pair.publicKey);
    const svc = await service();
    const api = client({ keyPair: pair });
    expect((await api.publicKey()).x).toBe(exported.x);
    expect((await api(`${svc.url}/a`)).status).toBe(200);
  });

  it('obtains one ICT for many concurrent requests and renews it before expiry', async () => {
    const svc = await service();
    let issued = 0;
    const api = client({
      refreshMargin: 60,
      getIct: async (jwk) => {
        issued++;
        await new Promise((r) => setTimeout(r, 20));
        return users.mint(jwk, { subject: 'alice', now: clock, lifetime: 300 });
      },
    });
    const results = await Promise.all(Array.from({ length: 10 }, () => api(`${svc.url}/a`)));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(issued).toBe(1);
    clock += 239;
    await api(`${svc.url}/a`);
    expect(issued).toBe(1);
    clock += 2; // inside the margin: renew, once, for all concurrent callers
    await Promise.all(Array.from({ length: 5 }, () => api(`${svc.url}/a`)));
    expect(issued).toBe(2);
  });

  it('keeps a still-valid ICT when renewal fails, and fails once it has expired', async () => {
    const svc = await service();
    let fail = false;
    const api = client({
      getIct: async (jwk) => {
        if (fail) throw new Error('issuer down');
        return users.mint(jwk, { subject: 'alice', now: clock, lifetime: 300 });
      },
    });
    const first = await api.ict();
    fail = true;
    clock += 250;
    expect(await api.ict()).toBe(first);
    expect((await api(`${svc.url}/a`)).status).toBe(200);
    clock += 60;
    expect(await codeOf(api.ict())).toBe('issuer_unavailable');
    expect(await codeOf(api(`${svc.url}/a`))).toBe('issuer_unavailable');
    fail = false;
    expect(await api.ict()).not.toBe(first);
  });

  it('rejects an ICT that is malformed, expired or certifies another key', async () => {
    const other = await newKey();
    expect(await codeOf(client({ getIct: async () => 'not-a-jwt' }).ict())).toBe('ict_malformed');
    expect(await codeOf(client({ getIct: async () => 'a.b.c' }).ict())).toBe('ict_malformed');
    const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    expect(await codeOf(client({ getIct: async () => `${part({ alg: 'ES256' })}.${part({ sub: 'alice' })}.c2ln` }).ict())).toBe('ict_claim_missing');
    expect(await codeOf(client({ getIct: (jwk) => users.mint(jwk, { now: clock - 1000, lifetime: 300 }) }).ict())).toBe('ict_expired');
    expect(await codeOf(client({ getIct: () => users.mint(other, { now: clock }) }).ict())).toBe('ict_cnf_invalid');
    expect(await codeOf(client({ getIct: (jwk) => users.mint(jwk, { now: clock, jkt: true }) }).ict())).toBe('resolved');
  });
});

describe('createClient: options', () => {
  const base = { serviceIssuers: [{ issuer: 'https://a.example', jwks: { keys: [] } }], getIct: async () => '' };
  it.each([
    ['no options', undefined],
    ['no service issuers', { ...base, serviceIssuers: [] }],
    ['both ICT sources', { ...base, issuer: { url: 'https://op.example', credential: { accessToken: 't' } } }],
    ['no ICT source', { serviceIssuers: base.serviceIssuers }],
    ['unknown proof', { ...base, proof: 'bearer' }],
    ['unknown algorithm', { ...base, algorithm: 'RS256' }],
    ['signature lifetime above 300', { ...base, signatureLifetime: 301 }],
    ['negative refresh margin', { ...base, refreshMargin: -1 }],
    ['bad expected service', { ...base, expectedService: 7 }],
    ['bad digest algorithm', { ...base, digestAlgorithm: 'md5' }],
    ['key pair that is not one', { ...base, keyPair: {} }],
  ])('throws TypeError for %s', (_name, options) => {
    expect(() => createClient(options as unknown as ClientOptions)).toThrow(TypeError);
  });

  it('throws TypeError for a key pair of another algorithm', async () => {
    const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    expect(() => createClient({ ...base, keyPair: pair })).toThrow(TypeError);
  });

  it('refuses an Authorization header of its own in dpop mode', async () => {
    const svc = await service();
    await expect(client({ proof: 'dpop' })(`${svc.url}/a`, { headers: { authorization: 'Bearer x' } })).rejects.toThrow(TypeError);
  });
});
