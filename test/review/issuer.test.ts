// The issuer's ICT endpoint under the review's hostile inputs, over a real socket.
import { createIssuer, jwtAccessTokens } from '@oidc2/issuer';
import { authorizationServer, keyPair, lateServer, popToken } from '../../packages/issuer/test/helpers';

let srv: Awaited<ReturnType<typeof lateServer>>;
let as: Awaited<ReturnType<typeof authorizationServer>>;
let issuerUrl: string;
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  srv = await lateServer();
  as = await authorizationServer();
  issuerUrl = `${srv.url}/op`;
  const issuer = await createIssuer({ issuer: issuerUrl, authenticators: [jwtAccessTokens({ issuer: as.issuer, audience: 'https://op.test', jwks: as.jwks })], clients: { app: { contexts: ['email'] } } });
  srv.use(issuer.nodeHandler);
});
afterAll(() => srv.close());

async function ict(body: (pop: string) => string): Promise<{ status: number; code: unknown }> {
  const at = await as.accessToken({ sub: 'alice', client_id: 'app', scope: 'openid e2e_auth_email' }, { now: now() });
  const pop = await popToken(await keyPair(), { iss: 'app', sub: 'alice', aud: issuerUrl }, { now: now() });
  const res = await fetch(`${issuerUrl}/ict`, { method: 'POST', headers: { authorization: `Bearer ${at}`, 'content-type': 'application/json' }, body: body(pop) });
  return { status: res.status, code: ((await res.json()) as { code?: unknown }).code };
}

describe('a JSON body naming a parameter twice', () => {
  it('once is served', async () => {
    expect(await ict((pop) => JSON.stringify({ pop_token: pop }))).toEqual({ status: 201, code: undefined });
  });

  it('twice, the first not a PoP token: 400 request_malformed, as for a form body (was 201: JSON.parse kept the last)', async () => {
    expect(await ict((pop) => `{"pop_token":"a.b.c","pop_token":${JSON.stringify(pop)}}`)).toEqual({ status: 400, code: 'request_malformed' });
  });

  it('a string member that holds quotes and escapes counts once', async () => {
    expect(await ict((pop) => JSON.stringify({ pop_token: pop, note: 'a "quoted" \\ value' }))).toEqual({ status: 201, code: undefined });
  });
});
