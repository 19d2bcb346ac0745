// @oidc2/client in a real browser: headless Chromium loads a page that imports the client's browser
// bundle, obtains an ICT from a real @oidc2/issuer, calls an Express service (with the @oidc2/express
// adapter) on another origin, and shows the verified service identity in the DOM. A proxy that
// flips one bit of the response body must make the page show a rejection instead. With end-to-end
// encryption, a logging proxy must see only ciphertext, and a proxy that forges an unsigned
// `e2ee_unavailable` must get a rejection and no request in clear. A streamed encrypted event stream
// must be read event by event (the service writes each one only after the page has read the one
// before), and a streamed answer that a proxy cuts short must make the page's read fail with a code.
// The page's `onEvent` receives the clients' decision events: grants, credentials, verifications.
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type RequestHandler } from 'express';
import { SignJWT, importJWK } from 'jose';
import { chromium, type Browser } from 'playwright-core';
import { oidc2, oidc2ErrorHandler } from '@oidc2/express';
import { createIssuer, jwtAccessTokens } from '@oidc2/issuer';
import type { Oidc2Event } from '@oidc2/core';
import { bundleForBrowser } from '../support/bundle';
import { newIssuer, newKey } from '../support/credentials';
import { startTamperProxy, type TamperProxy } from '../support/node-service';
import { startLoggingProxy, type LoggingProxy } from '../../packages/client/test/support/loopback-proxy';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const available = existsSync(CHROMIUM);
// In CI a missing browser is a failure; locally the suite may be skipped, saying why.
const suite = available || process.env.CI ? describe : describe.skip;
if (!available && !process.env.CI) console.warn(`test/browser skipped: ${CHROMIUM} not found (install Debian's chromium package to run it)`);

const SIGNATURE_HEADERS = 'identity-certification-token, signature, signature-input, content-digest, dpop-nonce, www-authenticate, content-encoding, oidc2-key-share, oidc2-session';

function cors(origin: () => string): RequestHandler {
  return (req, res, next) => {
    // An ordinary CORS middleware before oidc2: a response oidc2 answers itself (a refusal, the
    // session endpoint's handshake) keeps these fields.
    res.setHeader('access-control-allow-origin', origin());
    res.setHeader('access-control-expose-headers', SIGNATURE_HEADERS);
    res.setHeader('vary', 'origin');
    if (req.method !== 'OPTIONS') return next();
    res.setHeader('access-control-allow-methods', 'GET, POST');
    res.setHeader(
      'access-control-allow-headers',
      'content-type, content-digest, content-encoding, identity-certification-token, signature, signature-input, authorization, dpop, oidc2-key-share, oidc2-session',
    );
    res.setHeader('access-control-max-age', '600');
    res.status(204).end();
  };
}

function listening(handler?: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })),
  );
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>oidc2 client</title></head>
<body>
<dl>
  <dt>http-signature, ES256</dt><dd id="sig-es256">pending</dd><dd id="sig-es256-tampered">pending</dd>
  <dt>dpop, Ed25519</dt><dd id="dpop-ed25519">pending</dd><dd id="dpop-ed25519-tampered">pending</dd>
  <dt>e2ee, ES256</dt><dd id="e2ee">pending</dd><dd id="e2ee-forged">pending</dd>
  <dt>e2ee, streamed</dt><dd id="e2ee-events">pending</dd><dd id="e2ee-cut">pending</dd>
</dl>
<script type="application/json" id="config">__CONFIG__</script>
<script type="module">
  import { createClient } from '/client.js';
  const config = JSON.parse(document.getElementById('config').textContent);
  const show = (id, text) => { document.getElementById(id).textContent = text; };
  // Every decision event of the signing and e2ee clients, as onEvent received it.
  window.oidc2Events = [];
  const onEvent = (event) => window.oidc2Events.push(event);
  async function run(id, proof, algorithm) {
    const api = createClient({
      serviceIssuers: config.serviceIssuers,
      expectedService: config.service,
      proof,
      algorithm,
      issuer: { url: config.issuer, credential: { accessToken: config.accessToken }, subject: 'alice', clientId: 'spa' },
      onEvent,
    });
    const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from: id }) };
    try {
      const response = await api(config.serviceUrl + '/hello', init);
      const body = await response.json();
      show(id, 'verified ' + response.status + ' service=' + response.service.subject + ' issuer=' + response.service.issuer + ' caller=' + body.caller + ' echo=' + body.echo.from);
    } catch (error) {
      show(id, 'error ' + (error.code || error.name) + ': ' + error.message);
    }
    try {
      const response = await api(config.proxyUrl + '/hello', init);
      show(id + '-tampered', 'accepted ' + response.status);
    } catch (error) {
      show(id + '-tampered', 'rejected ' + (error.code || error.name));
    }
  }
  async function runE2ee() {
    const options = {
      serviceIssuers: config.serviceIssuers,
      expectedService: config.service,
      issuer: { url: config.issuer, credential: { accessToken: config.accessToken }, subject: 'alice', clientId: 'spa' },
      onEvent,
    };
    const post = (from) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from }) });
    try {
      const api = createClient({ ...options, encryption: 'required' });
      const first = await api(config.loggingUrl + '/hello', post('e2ee-secret-1'));
      const one = await first.json();
      const second = await api(config.loggingUrl + '/hello', post('e2ee-secret-2'));
      const two = await second.json();
      const e = (r) => r.encryption.mode + ':' + r.encryption.epoch + ':' + r.encryption.suite + ':' + r.encryption.bodyEncrypted;
      show('e2ee', 'verified ' + first.status + ' ' + e(first) + ' echo=' + one.echo.from + ' then ' + e(second) + ' echo=' + two.echo.from +
        ' coding=' + first.headers.get('content-encoding'));
    } catch (error) {
      show('e2ee', 'error ' + (error.code || error.name) + ': ' + error.message);
    }
    try {
      const response = await createClient({ ...options, encryption: 'preferred' })(config.forgingUrl + '/hello', post('e2ee-secret-3'));
      show('e2ee-forged', 'accepted ' + response.status);
    } catch (error) {
      show('e2ee-forged', 'rejected ' + (error.code || error.name));
    }
  }
  async function runStreamed() {
    const api = createClient({
      serviceIssuers: config.serviceIssuers,
      expectedService: config.service,
      issuer: { url: config.issuer, credential: { accessToken: config.accessToken }, subject: 'alice', clientId: 'spa' },
      encryption: 'required',
    });
    try {
      const response = await api(config.serviceUrl + '/events');
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      const seen = [];
      for (let next = await reader.read(); !next.done; next = await reader.read()) {
        seen.push(next.value);
        await window.eventRead(seen.length);
      }
      show('e2ee-events', 'read ' + JSON.stringify(seen) + ' encrypted=' + response.encryption.bodyEncrypted);
    } catch (error) {
      show('e2ee-events', 'error ' + (error.code || error.name) + ': ' + error.message);
    }
    let read = 0;
    try {
      const reader = (await api(config.cuttingUrl + '/feed')).body.getReader();
      for (let next = await reader.read(); !next.done; next = await reader.read()) read += next.value.length;
      show('e2ee-cut', 'accepted ' + read);
    } catch (error) {
      show('e2ee-cut', 'rejected ' + (error.code || error.name) + ' after ' + read);
    }
  }
  await run('sig-es256', 'http-signature', 'ES256');
  await run('dpop-ed25519', 'dpop', 'Ed25519');
  await runE2ee();
  await runStreamed();
  document.body.dataset.done = 'true';
</script>
</body></html>`;

suite('@oidc2/client in headless Chromium', () => {
  let browser: Browser | undefined;
  const servers: Server[] = [];
  let proxy: TamperProxy | undefined;
  const proxies: LoggingProxy[] = [];

  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await Promise.all(proxies.map((p) => p.close()));
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  it('shows the verified service identity, and a rejection for a tampered response', async () => {
    expect(existsSync(CHROMIUM)).toBe(true);
    const bundle = await bundleForBrowser('packages/client/src/index.ts');
    expect(bundle.errors).toEqual([]);

    // The page's origin also hosts the ICT issuer (so the page reaches it without CORS).
    const page = await listening();
    const service = await listening();
    proxy = await startTamperProxy();
    servers.push(page.server, service.server);
    proxy.target = service.url;
    // Sees every exchange of the e2ee client; changes nothing.
    const logging = await startLoggingProxy(service.url);
    // Answers every e2ee request (not the CORS preflight) with an unsigned e2ee_unavailable, made
    // readable to the page, as a downgrading intermediary would.
    const forging = await startLoggingProxy(service.url);
    // Cuts every streamed encrypted answer after its first record and 100 octets of the second.
    const cutting = await startLoggingProxy(service.url);
    cutting.onResponse = (response) =>
      response.headers.get('content-encoding') === 'aes128gcm' && !response.headers.has('content-digest') ? { ...response, body: response.body.subarray(0, 21 + 16384 + 100) } : response;
    proxies.push(logging, forging, cutting);
    forging.onRequest = (request) =>
      request.method === 'OPTIONS'
        ? request
        : {
            status: 400,
            headers: new Headers({
              'content-type': 'application/problem+json',
              'access-control-allow-origin': page.url,
              'access-control-expose-headers': SIGNATURE_HEADERS,
            }),
            body: new TextEncoder().encode('{"type":"urn:oidc2:error:e2ee_unavailable","status":400,"code":"e2ee_unavailable"}'),
          };
    const issuerId = `${page.url}/op`;

    const login = await newIssuer('https://login.test.example');
    const attest = await newIssuer('https://attest.test.example');
    const serviceKey = await newKey('ES256');
    const issuer = await createIssuer({ issuer: issuerId, authenticators: [jwtAccessTokens({ issuer: login.issuer, audience: issuerId, jwks: login.jwks })] });
    const accessToken = await new SignJWT({ scope: 'openid e2e_auth_browser', client_id: 'spa' })
      .setProtectedHeader({ alg: 'ES256', kid: login.kid, typ: 'at+jwt' })
      .setIssuer(login.issuer)
      .setAudience(issuerId)
      .setSubject('alice')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(await importJWK(login.key.privateJwk, 'ES256'));
    const config = {
      issuer: issuerId,
      accessToken,
      serviceIssuers: [{ issuer: attest.issuer, jwks: attest.jwks }],
      service: 'spiffe://test.example/greeter',
      serviceUrl: service.url,
      proxyUrl: proxy.url,
      loggingUrl: logging.url,
      forgingUrl: forging.url,
      cuttingUrl: cutting.url,
    };
    const html = PAGE.replace('__CONFIG__', JSON.stringify(config).replace(/</g, '\\u003c'));
    page.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/') {
        res.setHeader('content-type', 'text/html; charset=utf-8');
        res.end(html);
      } else if (req.url === '/client.js') {
        res.setHeader('content-type', 'text/javascript; charset=utf-8');
        res.end(bundle.code);
      } else issuer.nodeHandler(req, res);
    });

    const app = express();
    app.use(cors(() => page.url));
    app.use(
      oidc2({
        issuers: [{ issuer: issuerId }],
        audiences: [service.url, proxy.url, logging.url, forging.url, cutting.url],
        credential: { ict: await attest.mint(serviceKey, { subject: 'spiffe://test.example/greeter', lifetime: 600 }), privateKey: serviceKey.privateJwk },
      }),
    );
    app.use(express.json());
    app.post('/hello', (req, res) => {
      res.json({ caller: req.identity?.subject, echo: req.body });
    });
    // Event n + 1 is written only once the page says it has read event n (or after 5 s, as "stalled").
    let eventsRead = 0;
    const waiting = new Map<number, () => void>();
    const pageRead = (n: number) =>
      new Promise<boolean>((resolve) => {
        if (eventsRead >= n) return resolve(true);
        const timer = setTimeout(() => (waiting.delete(n), resolve(false)), 5000);
        waiting.set(n, () => (clearTimeout(timer), resolve(true)));
      });
    app.get('/events', async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const n of [1, 2, 3]) {
        res.write(`data: ${n}\n\n`);
        if (!(await pageRead(n))) res.write('data: stalled\n\n');
      }
      res.end();
    });
    app.get('/feed', (_req, res) => {
      res.type('text/event-stream').send('data: x\n\n'.repeat(6000));
    });
    app.use(oidc2ErrorHandler());
    service.server.on('request', app);

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    const tab = await browser.newPage();
    const problems: string[] = [];
    tab.on('pageerror', (error) => problems.push(error.message));
    await tab.exposeFunction('eventRead', (n: number) => {
      eventsRead = n;
      for (const [k, wake] of waiting) if (k <= n) (waiting.delete(k), wake());
    });
    await tab.goto(`${page.url}/`);
    await tab.waitForSelector('body[data-done="true"]', { timeout: 20_000 });
    const text = async (id: string) => (await tab.locator(`#${id}`).textContent())?.trim();

    expect(problems).toEqual([]);
    expect(await text('sig-es256')).toBe(`verified 200 service=spiffe://test.example/greeter issuer=${attest.issuer} caller=alice echo=sig-es256`);
    expect(await text('dpop-ed25519')).toBe(`verified 200 service=spiffe://test.example/greeter issuer=${attest.issuer} caller=alice echo=dpop-ed25519`);
    expect(await text('sig-es256-tampered')).toBe('rejected response_signature_invalid');
    expect(await text('dpop-ed25519-tampered')).toBe('rejected response_signature_invalid');

    // End-to-end encryption: a session opened at the endpoint, both bodies encrypted both ways, and
    // the proxy in between never saw either in clear.
    expect(await text('e2ee')).toBe('verified 200 session:0:x25519:true echo=e2ee-secret-1 then session:0:x25519:true echo=e2ee-secret-2 coding=null');
    expect(logging.requests.map((r) => `${r.method} ${r.path}`).filter((r) => !r.startsWith('OPTIONS'))).toEqual([
      'POST /.well-known/oidc2-session',
      'POST /hello',
      'POST /hello',
    ]);
    const travelled = [...logging.requests.map((r) => r.body), ...logging.responses.map((r) => r.body)].map((b) => Buffer.from(b).toString('latin1'));
    expect(travelled.some((b) => b.includes('e2ee-secret'))).toBe(false);
    expect(logging.responses.filter((r) => r.status === 200).every((r) => r.headers.get('content-encoding') === 'aes128gcm')).toBe(true);
    // The forged, unsigned refusal is rejected, and nothing follows it in clear.
    expect(await text('e2ee-forged')).toBe('rejected e2ee_response_unsigned');
    expect(forging.requests.filter((r) => r.method !== 'OPTIONS').map((r) => `${r.method} ${r.path}`)).toEqual(['POST /.well-known/oidc2-session']);
    expect(forging.requests.some((r) => Buffer.from(r.body).toString().includes('e2ee-secret'))).toBe(false);

    // Streamed: each event read as it came (none stalled), and a cut stream an error after its first record.
    expect(await text('e2ee-events')).toBe('read ["data: 1\\n\\n","data: 2\\n\\n","data: 3\\n\\n"] encrypted=true');
    expect(await text('e2ee-cut')).toBe(`rejected e2ee_response_decrypt_failed after ${16384 - 17}`);
    expect(cutting.responses.some((r) => r.status === 200 && r.headers.get('content-encoding') === 'aes128gcm' && !r.headers.has('content-digest'))).toBe(true);

    // The page's onEvent saw each client's grant and credential, and each response verified or refused.
    const events = (await tab.evaluate(() => (window as unknown as { oidc2Events: Oidc2Event[] }).oidc2Events)) as Oidc2Event[];
    const line = (e: Oidc2Event) =>
      e.type === 'response_verification'
        ? `${e.method} ${e.url} ${e.outcome} ${e.code ?? e.subject}${e.e2ee ? ` ${e.e2ee}` : ''}`
        : `${e.type} ${e.outcome}${'side' in e ? ` ${e.side}` : ''}`;
    const issued = ['issuer_grant success client', 'credential_refresh success client'];
    expect(events.map(line)).toEqual([
      ...issued,
      `POST ${service.url}/hello success spiffe://test.example/greeter`,
      `POST ${proxy.url}/hello failure response_signature_invalid`,
      ...issued,
      `POST ${service.url}/hello success spiffe://test.example/greeter`,
      `POST ${proxy.url}/hello failure response_signature_invalid`,
      ...issued,
      `POST ${logging.url}/.well-known/oidc2-session success spiffe://test.example/greeter handshake`,
      `POST ${logging.url}/hello success spiffe://test.example/greeter session`,
      `POST ${logging.url}/hello success spiffe://test.example/greeter session`,
      ...issued,
      `POST ${forging.url}/.well-known/oidc2-session failure e2ee_response_unsigned handshake`,
    ]);
    expect(events.filter((e) => e.type === 'issuer_grant')).toEqual(Array(4).fill(expect.objectContaining({ subject: 'alice', client: 'spa', grant: 'ict' })));
    expect(JSON.stringify(events)).not.toContain(accessToken.slice(-43));
  });
});
