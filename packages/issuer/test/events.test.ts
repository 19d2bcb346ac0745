// issuer_grant events (docs/events.md) from a real issuer on loopback: one per request at the ICT
// endpoint, with subject, client, the certified key's thumbprint and expiry on success, the code and
// status on failure; never the access token, the PoP token or the ICT.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { calculateJwkThumbprint } from 'jose';
import { OIDC2_EVENT_CHANNELS, type Oidc2Event } from '@oidc2/core';
import { createIssuer, jwtAccessTokens } from '@oidc2/issuer';
import { authorizationServer, clock, keyPair, lateServer, popToken, T0 } from './helpers';

it('publishes each grant and each refusal at the ICT endpoint, to onEvent and the channel', async () => {
  const srv = await lateServer();
  const as = await authorizationServer();
  const clk = clock();
  const issuerUrl = `${srv.url}/op`;
  const events: Oidc2Event[] = [];
  const channelled: unknown[] = [];
  const onChannel = (m: unknown) => channelled.push(m);
  subscribe(OIDC2_EVENT_CHANNELS.issuer_grant, onChannel);
  const issuer = await createIssuer({
    issuer: issuerUrl,
    now: clk.now,
    authenticators: [jwtAccessTokens({ issuer: as.issuer, audience: 'https://op.test', jwks: as.jwks })],
    onEvent: (e) => events.push(e),
  });
  srv.use(issuer.nodeHandler);
  const secrets: string[] = [];
  try {
    const kp = await keyPair();
    const at = await as.accessToken({ sub: 'alice', client_id: 'app', scope: 'openid e2e_auth_email' }, { now: T0 });
    const pop = await popToken(kp, { iss: 'app', sub: 'alice', aud: issuerUrl }, { now: T0 });
    const ok = await fetch(`${issuerUrl}/ict`, { method: 'POST', body: pop, headers: { authorization: `Bearer ${at}`, 'content-type': 'application/jwt+pop' } });
    expect(ok.status).toBe(201);
    const { identity_certification_token: ict } = (await ok.json()) as { identity_certification_token: string };
    const refused = await fetch(`${issuerUrl}/ict`, { method: 'POST', body: pop, headers: { authorization: 'Bearer not-a-token', 'content-type': 'application/jwt+pop' } });
    expect(refused.status).toBe(401);
    secrets.push(at, pop, ict);

    expect(events).toEqual([
      expect.objectContaining({ type: 'issuer_grant', side: 'issuer', grant: 'ict', token: 'ict', outcome: 'success', subject: 'alice', client: 'app', thumbprint: await calculateJwkThumbprint(kp.publicJwk), expiresAt: T0 + 300 }),
      expect.objectContaining({ type: 'issuer_grant', side: 'issuer', grant: 'ict', outcome: 'failure', code: 'access_token_invalid', status: 401 }),
    ]);
    expect(channelled).toEqual(events);
    const text = JSON.stringify(events);
    for (const secret of secrets) for (let i = 0; i + 16 <= secret.length; i += 8) expect(text).not.toContain(secret.slice(i, i + 16));
  } finally {
    unsubscribe(OIDC2_EVENT_CHANNELS.issuer_grant, onChannel);
    await srv.close();
  }
});

it('refuses an onEvent that is not a function', async () => {
  await expect(createIssuer({ issuer: 'https://op.example.com', authenticators: [async () => undefined], onEvent: 1 as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
});
