// The soak's end-to-end encrypted traffic (docs/e2ee.md) against a server whose oidc2 has a
// credential and `e2ee: { symmetric: true }` with short epochs, so that ten minutes see handshakes,
// rekeys and expired sessions:
// - valid: @oidc2/client with encryption required, in three kinds (public-key session requests that
//   rekey every `rekeySeconds`, a ratchet that rekeys on every request, and symmetric session
//   requests), each answer verified and decrypted by the client and checked against what was sent;
// - hostile: session requests made by hand (bench/lib/e2ee-caller.mjs), each of which must be
//   refused with its own code.
import { randomBytes } from 'node:crypto';
import { loadAdapter, loadPackage } from '../bench/lib/env.mjs';
import { AUDIENCE, newKey } from '../bench/lib/credentials.mjs';
import { e2eeCaller } from '../bench/lib/e2ee-caller.mjs';

const adapter = await loadAdapter();
const enc = new TextEncoder();
const dec = new TextDecoder();

/** The server's e2ee options: a session lives 120 s, rekeys after 30 s, and ends 300 s after its handshake. */
export const E2EE_OPTIONS = { symmetric: true, epochSeconds: 120, rekeySeconds: 30, maxAgeSeconds: 300 };
/** Hand-made hostile sessions are opened again after this many seconds, well inside an epoch. */
const SESSION_REFRESH_SECONDS = 60;

/** The service's credential for the server config: an ES256 key and its ICT (subject `api`). */
export async function serviceCredential(issuer) {
  const key = await newKey('ES256');
  return { ict: await issuer.mintIct(key, 'api'), privateKey: key.privateJwk };
}

const flipAt = (s, i) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);

/**
 * The encrypted traffic against the server at `base`: `valid[kind]()` resolves
 * `{ verified, mode, failure? }`; `hostile[kind]()` resolves `{ requests, status, code, expected }`.
 */
export async function e2eeTraffic(core, issuer, base) {
  const issuers = [{ issuer: issuer.issuer, jwks: issuer.jwks }];
  const { createClient } = await loadPackage('client');
  // Everything the client addresses to AUDIENCE goes to the loopback server.
  const loopback = (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.startsWith(AUDIENCE)) throw new Error(`the soak client addressed ${url}`);
    const target = `${base}${url.slice(AUDIENCE.length)}`;
    return typeof input === 'string' || input instanceof URL ? fetch(target, init) : fetch(new Request(target, input), init);
  };
  const client = (subject, e2ee) =>
    createClient({
      serviceIssuers: issuers,
      expectedService: 'api',
      getIct: (publicJwk) => issuer.mintIct({ alg: 'ES256', publicJwk }, subject, 600),
      encryption: 'required',
      e2ee,
      fetch: loopback,
    });
  const clients = { session: client('e2ee-session', {}), ratchet: client('e2ee-ratchet', { ratchet: true }), symmetric: client('e2ee-symmetric', { symmetric: true }) };

  /** One request through a client: POST /echo with a fresh JSON body, or GET /whoami; checked end to end. */
  const validRequest = (kind, subject) => async () => {
    const body = Math.random() < 0.7 ? JSON.stringify({ n: Math.random(), pad: 'x'.repeat(Math.floor(Math.random() * 4096)) }) : undefined;
    const res = await clients[kind](`${AUDIENCE}${body ? '/echo' : '/whoami'}`, body ? { method: 'POST', headers: { 'content-type': 'application/json' }, body } : {});
    const text = await res.text();
    const answer = res.status === 200 ? JSON.parse(text) : {};
    const verified =
      res.status === 200 && res.encryption?.bodyEncrypted === true && answer.caller === subject && JSON.stringify(answer.echo) === (body ?? 'null') && answer.mac === (kind === 'symmetric' && res.encryption.mode === 'session');
    return { verified, mode: res.encryption?.mode ?? 'clear', failure: verified ? undefined : { status: res.status, encryption: res.encryption, text: text.slice(0, 200) } };
  };
  const valid = { session: validRequest('session', 'e2ee-session'), ratchet: validRequest('ratchet', 'e2ee-ratchet'), symmetric: validRequest('symmetric', 'e2ee-symmetric') };

  // Hand-made sessions of two hostile callers, each opened again before its token expires.
  const send = async (r) => {
    const headers = Object.entries(r.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]);
    const response = await fetch(`${base}${r.url}`, { method: r.method, headers, body: r.body, signal: AbortSignal.timeout(30_000) });
    return { status: response.status, headers: core.normalizeFields(response.headers), body: new Uint8Array(await response.arrayBuffer()) };
  };
  const ictVerifier = core.createIctVerifier({ issuers });
  const party = async (subject) => {
    const key = await newKey('ES256');
    const signing = { ict: await issuer.mintIct(key, subject, 3600), key: await core.importKey(key.privateJwk, 'ES256', 'sign') };
    const caller = e2eeCaller(core, { ...signing, publicJwk: key.publicJwk, subject, ictVerifier });
    caller.signing = signing;
    let session;
    caller.session = async () => {
      if (!session || Date.now() / 1000 - (await session).openedAt > SESSION_REFRESH_SECONDS) {
        const opening = caller.handshake(send);
        session = opening;
        opening.catch(() => session === opening && (session = undefined)); // the next request opens one again
      }
      return session;
    };
    return caller;
  };
  const [mallory, eve] = [await party('mallory'), await party('eve')];
  const body = () => enc.encode(JSON.stringify({ n: Math.random() }));
  /** A symmetric session request (docs/protocol.md section 7.11) signed with `macKey` instead of K_c2s. */
  const macSealed = async (session, macKey) => {
    const nonce = core.createNonce();
    const audience = `${AUDIENCE}/echo`;
    const encrypted = await adapter.encryptBody(await adapter.requestKey({ rk: session.rk, sid: session.sid, nonce, method: 'POST', audience }), body());
    const headers = { [adapter.SESSION_FIELD]: [adapter.serializeSession(session.token)], 'content-type': ['application/json'], 'content-encoding': ['aes128gcm'] };
    const signed = await core.signSessionMacRequest({ method: 'POST', url: audience, headers, body: encrypted }, { key: macKey, nonce, audience });
    return { method: 'POST', url: '/echo', headers: signed.headers, body: encrypted };
  };

  const HOSTILE = {
    // A proxy changes one octet of the ciphertext: the signed digest no longer matches.
    'ciphertext changed on the way': [
      'digest_mismatch',
      async () => {
        const r = await mallory.sealed(await mallory.session(), 'POST', '/echo', body());
        const i = Math.floor(Math.random() * r.body.length);
        r.body = Uint8Array.from(r.body, (b, j) => (j === i ? b ^ 0x01 : b));
        return [r];
      },
    ],
    // The caller signs a body that its session's key does not open.
    'body under another key': ['e2ee_decrypt_failed', async () => [await mallory.sealed({ ...(await mallory.session()), rk: randomBytes(32) }, 'POST', '/echo', body())]],
    'replayed session request': [
      'replay_detected',
      async () => {
        const r = await mallory.sealed(await mallory.session(), 'POST', '/echo', body());
        return [r, r];
      },
    ],
    // One character of the session token's ciphertext changed, signed by the caller.
    'forged session token': [
      'session_invalid',
      async () => {
        const s = await mallory.session();
        const parts = s.token.split('.');
        parts[3] = flipAt(parts[3], Math.floor(Math.random() * parts[3].length));
        return [await mallory.sealed({ ...s, token: parts.join('.') }, 'POST', '/echo', body())];
      },
    ],
    "another caller's session token": ['session_binding_mismatch', async () => [await mallory.sealed(await eve.session(), 'POST', '/echo', body())]],
    'body in clear inside a session': [
      'e2ee_body_not_encrypted',
      async () => {
        const headers = { [adapter.SESSION_FIELD]: [adapter.serializeSession((await mallory.session()).token)], 'content-type': ['application/json'] };
        const signed = await core.signRequest({ method: 'POST', url: `${AUDIENCE}/echo`, headers, body: body() }, mallory.signing);
        return [{ method: 'POST', url: '/echo', headers: signed.headers, body: signed.body }];
      },
    ],
    'symmetric request under a forged key': ['signature_invalid', async () => [await macSealed(await mallory.session(), randomBytes(32))]],
    'handshake with an invalid key share': [
      'e2ee_key_share_invalid',
      async () => {
        const audience = `${AUDIENCE}${core.SESSION_ENDPOINT_PATH}`;
        const share = `x25519=:${randomBytes(31).toString('base64')}:`;
        const signed = await core.signRequest({ method: 'POST', url: audience, headers: { [adapter.KEY_SHARE_FIELD]: [share] } }, { ...mallory.signing, audience });
        return [{ method: 'POST', url: core.SESSION_ENDPOINT_PATH, headers: signed.headers }];
      },
    ],
  };
  const hostile = Object.fromEntries(
    Object.entries(HOSTILE).map(([kind, [expected, make]]) => [
      kind,
      async () => {
        const requests = await make();
        let response;
        for (const r of requests) response = await send(r); // only the last answer counts (a replay's second)
        let code;
        try {
          code = JSON.parse(dec.decode(response.body)).code;
        } catch {
          code = undefined;
        }
        return { requests: requests.length, status: response.status, code, expected };
      },
    ]),
  );
  return { valid, hostile };
}
