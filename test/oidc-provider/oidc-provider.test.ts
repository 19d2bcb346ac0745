// oidc-provider as the OpenID Provider, @oidc2/issuer mounted into its server (docs/oidc-provider.md),
// an Express service and @oidc2/client callers, all on 127.0.0.1. Every token comes from the OP
// over HTTP: a user's by the authorization code flow (plain, DPoP-bound, refreshed), the
// workloads' by the client-credentials grant, as JWTs for the issuer's resource (RFC 8707) or
// opaque and introspected. The service verifies ICTs and WITs with the keys the OP publishes.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { createClient, serviceCredential, type ClientOptions, type IssuanceOptions } from '@oidc2/client';
import { oidc2 } from '@oidc2/express';
import { createIssuer, fileSigningKeyStore, jwtAccessTokens, tokenIntrospection, type ListeningIssuer } from '@oidc2/issuer';
import { settledCode } from '../support/error-code';
import { CLIENTS, CONTEXT, dpopKey, startOp, TRUST_DOMAIN, USER, type RunningOp } from './op';

const SERVICE = CLIENTS.ordersApi.id;

let op: RunningOp;
let service: { url: string; server: Server };

beforeAll(async () => {
  op = await startOp();
  // The service: ICTs and WITs of the OP's issuer, keys through the OP's discovery document; its
  // own ICT from the issuer, for its client-credentials token.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const app = express();
  app.use(
    oidc2({
      issuers: [{ issuer: op.url }],
      audiences: [url],
      workloads: { trustDomains: [{ trustDomain: TRUST_DOMAIN, issuer: op.url }] },
      credential: serviceCredential({ issuer: { url: op.url, credential: { accessToken: () => op.clientCredentials('ordersApi') }, subject: SERVICE } }),
    }),
  );
  app.get('/whoami', (req, res) => {
    const { kind, subject, issuer, contexts } = req.identity!;
    res.json({ kind, subject, issuer, contexts });
  });
  server.on('request', app);
  service = { url, server };
});

afterAll(async () => {
  await new Promise<void>((resolve) => {
    service?.server.close(() => resolve());
    service?.server.closeAllConnections();
  });
  await op?.close();
});

/** A caller holding an ICT for `accessToken`, obtained at the OP's ICT endpoint (or by token exchange). */
function userCaller(accessToken: string, clientId: string, extra: Partial<ClientOptions> = {}, grant: IssuanceOptions['grant'] = 'ict') {
  const issuer: IssuanceOptions =
    grant === 'token-exchange'
      ? { url: op.url, grant, endpoint: op.issuer.endpoints.token, credential: { accessToken } }
      : { url: op.url, credential: { accessToken }, subject: USER, clientId };
  return createClient({ serviceIssuers: [{ issuer: op.url }], expectedService: SERVICE, issuer, ...extra });
}

/** A workload holding a WIT for its client-credentials token, from the OP's WIT endpoint. */
function workloadCaller(client: 'billing' | 'reports' | 'audit') {
  return createClient({
    proof: 'wpt',
    serviceIssuers: [{ issuer: op.url }],
    serviceTrustDomains: [{ trustDomain: TRUST_DOMAIN, issuer: op.url }],
    expectedService: SERVICE,
    issuer: { url: op.url, grant: 'wit', credential: { accessToken: () => op.clientCredentials(client) }, subject: CLIENTS[client].id },
  });
}

async function whoami(api: ReturnType<typeof createClient>): Promise<Record<string, unknown>> {
  const res = await api(`${service.url}/whoami`);
  expect(res.status).toBe(200);
  expect(res.service.subject).toBe(SERVICE);
  return (await res.json()) as Record<string, unknown>;
}

describe('users: tokens of the authorization code flow', () => {
  it('a JWT access token for the issuer resource gets an ICT of the OP; the service sees the user', async () => {
    const { accessToken } = await op.userToken('bankApp');
    expect(decodeJwt(accessToken)).toMatchObject({ aud: op.ictResource, sub: USER, client_id: CLIENTS.bankApp.id, gty: 'authorization_code' });
    const api = userCaller(accessToken, CLIENTS.bankApp.id);
    expect(await whoami(api)).toEqual({ kind: 'user', subject: USER, issuer: op.url, contexts: [CONTEXT] });
    // The ICT is the OP's: its iss, and the EC key the OP publishes but never signs its own tokens with.
    const ict = await api.ict();
    expect(decodeJwt(ict)).toMatchObject({ iss: op.url, sub: USER, aud: CLIENTS.bankApp.id, ctx: [CONTEXT] });
    expect(decodeProtectedHeader(ict)).toMatchObject({ typ: 'ict+jwt', alg: 'ES256', kid: op.ictKid });
    expect(decodeProtectedHeader(accessToken).kid).not.toBe(op.ictKid);
    const jwks = (await (await fetch(`${op.url}/jwks`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toContain(op.ictKid);
  });

  it('a refreshed access token (gty "authorization_code refresh_token") is the same user, by token exchange', async () => {
    const { refreshToken } = await op.userToken('bankApp');
    const refreshed = await op.refresh('bankApp', refreshToken!);
    expect(decodeJwt(refreshed).gty).toBe('authorization_code refresh_token');
    expect(await whoami(userCaller(refreshed, CLIENTS.bankApp.id, {}, 'token-exchange'))).toEqual({ kind: 'user', subject: USER, issuer: op.url, contexts: [CONTEXT] });
  });

  it('an opaque access token is introspected at the OP', async () => {
    const { accessToken } = await op.userToken('mailApp');
    expect(accessToken.split('.')).toHaveLength(1);
    expect(await whoami(userCaller(accessToken, CLIENTS.mailApp.id))).toEqual({ kind: 'user', subject: USER, issuer: op.url, contexts: [CONTEXT] });
  });

  it('a DPoP-bound access token certifies only the key it is bound to', async () => {
    const key = await dpopKey();
    const { accessToken } = await op.userToken('bankApp', { dpop: key });
    expect(decodeJwt(accessToken).cnf).toEqual({ jkt: expect.any(String) });
    for (const grant of ['ict', 'token-exchange'] as const) {
      expect(await whoami(userCaller(accessToken, CLIENTS.bankApp.id, { keyPair: key.keyPair }, grant))).toMatchObject({ kind: 'user', subject: USER });
    }
    const other = await dpopKey();
    expect(await settledCode(userCaller(accessToken, CLIENTS.bankApp.id, { keyPair: other.keyPair })(`${service.url}/whoami`))).toBe('pop_key_invalid');
    expect(await settledCode(userCaller(accessToken, CLIENTS.bankApp.id, { keyPair: other.keyPair }, 'token-exchange')(`${service.url}/whoami`))).toBe('dpop_invalid');
  });

  it('an access token for another resource is refused', async () => {
    const { accessToken } = await op.userToken('bankApp', { resource: op.otherResource });
    expect(decodeJwt(accessToken).aud).toBe(op.otherResource);
    expect(await settledCode(userCaller(accessToken, CLIENTS.bankApp.id)(`${service.url}/whoami`))).toBe('access_token_invalid');
  });
});

describe('workloads: client-credentials tokens', () => {
  it('a JWT client-credentials token gets a WIT; the service sees the workload', async () => {
    expect(await whoami(workloadCaller('billing'))).toEqual({ kind: 'workload', subject: `spiffe://${TRUST_DOMAIN}/billing`, issuer: op.url, contexts: [] });
  });

  it('an opaque client-credentials token, introspected without sub, is mapped to its client id', async () => {
    const token = await op.clientCredentials('reports');
    const introspected = await fetch(`${op.url}/token/introspection`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${CLIENTS.issuer.id}:${CLIENTS.issuer.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }).toString(),
    });
    const answer = (await introspected.json()) as Record<string, unknown>;
    expect(answer).toMatchObject({ active: true, client_id: CLIENTS.reports.id });
    expect(answer.sub).toBeUndefined();
    expect(await whoami(workloadCaller('reports'))).toEqual({ kind: 'workload', subject: `spiffe://${TRUST_DOMAIN}/reports`, issuer: op.url, contexts: [] });
  });

  it("a client not listed in clientCredentials is refused, and a revoked token is inactive", async () => {
    expect(await settledCode(workloadCaller('audit')(`${service.url}/whoami`))).toBe('access_denied');
    const token = await op.clientCredentials('reports');
    await op.revoke('reports', token);
    const api = createClient({
      proof: 'wpt',
      serviceIssuers: [{ issuer: op.url }],
      serviceTrustDomains: [{ trustDomain: TRUST_DOMAIN, issuer: op.url }],
      issuer: { url: op.url, grant: 'wit', credential: { accessToken: token }, subject: CLIENTS.reports.id },
    });
    expect(await settledCode(api(`${service.url}/whoami`))).toBe('access_token_invalid');
  });

  it('without the clientCredentials option, client-credentials tokens are refused, not taken as users', async () => {
    // A second issuer with the same authenticators as the OP's, minus the client-credentials mapping.
    const plain = await createIssuer({
      issuer: 'http://127.0.0.1',
      authenticators: [
        jwtAccessTokens({ issuer: op.url, audience: op.ictResource }),
        tokenIntrospection({ endpoint: `${op.url}/token/introspection`, clientId: CLIENTS.issuer.id, clientSecret: CLIENTS.issuer.secret, audience: op.ictResource }),
      ],
    });
    let listening: ListeningIssuer | undefined;
    try {
      listening = await plain.listen();
      // The ICT endpoint as the draft has it: the token in Authorization, a PoP token as body.
      const key = await dpopKey();
      for (const client of ['billing', 'reports'] as const) {
        const api = createClient({
          serviceIssuers: [{ issuer: op.url }],
          keyPair: key.keyPair,
          issuer: { url: plain.issuer, endpoint: `${listening.url}/ict`, credential: { accessToken: await op.clientCredentials(client) }, subject: CLIENTS[client].id },
        });
        expect(await settledCode(api(`${service.url}/whoami`))).toBe('access_denied');
      }
    } finally {
      await listening?.close();
    }
  });
});

describe('keys across restarts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oidc2-op-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('with a signingKeyStore, ICTs signed before a restart of the OP and the issuer still verify after it', async () => {
    const store = fileSigningKeyStore(join(dir, 'ict-keys.json'));
    const ictOf = async (running: RunningOp) => {
      const { accessToken } = await running.userToken('bankApp');
      return createClient({ serviceIssuers: [{ issuer: running.url }], issuer: { url: running.url, credential: { accessToken }, subject: USER, clientId: CLIENTS.bankApp.id } }).ict();
    };
    const verify = (running: RunningOp, ict: string) => jwtVerify(ict, createRemoteJWKSet(new URL(`${running.url}/jwks`)), { issuer: running.url, typ: 'ict+jwt' });
    const first = await startOp({ signingKeyStore: store });
    const port = Number(new URL(first.url).port);
    const before = await ictOf(first);
    await first.close();

    const restarted = await startOp({ signingKeyStore: store, port });
    try {
      expect(restarted.url).toBe(first.url);
      expect((await verify(restarted, before)).payload.sub).toBe(USER);
      expect(decodeProtectedHeader(await ictOf(restarted)).kid).toBe(decodeProtectedHeader(before).kid);
    } finally {
      await restarted.close();
    }
    // The control: without the store, the restarted issuer has a new key and the old ICTs fail.
    const forgetful = await startOp({ port });
    try {
      await expect(verify(forgetful, before)).rejects.toMatchObject({ code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
    } finally {
      await forgetful.close();
    }
  });
});
