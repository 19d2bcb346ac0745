// Signing keys across restarts: an issuer restarted on the same port with a fileSigningKeyStore
// publishes the keys that signed the ICTs callers still hold, so a service that fetches its JWKS
// after the restart accepts them; without a store it does not (ict_unknown_key).
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createIctVerifier } from '@oidc2/core';
import { apiKeys, createIssuer, fileSigningKeyStore, hashApiKey, type IssuerOptions, type SigningKeyStore } from '@oidc2/issuer';
import { keyPair, popToken } from './helpers';

const workload = apiKeys({ keys: [{ hash: hashApiKey('key'), subject: 'w', contexts: ['c'] }] });

/** An issuer on a fixed loopback port that can be stopped and started again with new options. */
async function issuerOn(port: number, options: Partial<IssuerOptions>): Promise<{ url: string; issue(): Promise<string>; rotate(): Promise<string>; stop(): Promise<void> }> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = await createIssuer({ issuer: url, authenticators: [workload], ...options });
  server.on('request', issuer.nodeHandler);
  return {
    url,
    async issue() {
      const pop = await popToken(await keyPair(), { iss: 'w', sub: 'w', aud: url }, { now: Math.floor(Date.now() / 1000) });
      const res = await fetch(`${url}/ict`, { method: 'POST', body: pop, headers: { authorization: 'ApiKey key', 'content-type': 'application/jwt+pop' } });
      expect(res.status).toBe(201);
      return ((await res.json()) as { identity_certification_token: string }).identity_certification_token;
    },
    rotate: async () => (await issuer.rotateKeys()).kid,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// What a service does after the issuer restarted: a fresh verifier fetches the JWKS by discovery.
const freshService = (url: string) => createIctVerifier({ issuers: [{ issuer: url }] });

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

test('with a file store, ICTs signed before a restart (and before a rotation) still verify after it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'oidc2-keys-'));
  const file = join(dir, 'issuer-keys.json');
  const first = await issuerOn(0, { signingKeyStore: fileSigningKeyStore(file) });
  const port = Number(new URL(first.url).port);
  const beforeRotation = await first.issue();
  await first.rotate();
  const afterRotation = await first.issue();
  await first.stop();
  expect((await stat(file)).mode & 0o777).toBe(0o600);

  const second = await issuerOn(port, { signingKeyStore: fileSigningKeyStore(file) });
  try {
    for (const ict of [beforeRotation, afterRotation, await second.issue()]) await expect(freshService(second.url).verify(ict)).resolves.toMatchObject({ subject: 'w' });
  } finally {
    await second.stop();
  }
});

test('without a store, a restarted issuer has lost the key: ict_unknown_key', async () => {
  const first = await issuerOn(0, {});
  const port = Number(new URL(first.url).port);
  const ict = await first.issue();
  await first.stop();
  const second = await issuerOn(port, {});
  try {
    expect(await codeOf(freshService(second.url).verify(ict))).toBe('ict_unknown_key');
  } finally {
    await second.stop();
  }
});

test('a rotation the store cannot save fails, and the old key goes on signing', async () => {
  let saved = 0;
  const held: { value?: Parameters<SigningKeyStore['save']>[0] } = {};
  const store: SigningKeyStore = {
    load: async () => held.value,
    save: async (keys) => {
      if (saved++ > 0) throw new Error('disk full');
      held.value = keys;
    },
  };
  const issuer = await createIssuer({ issuer: 'https://op.example.com', authenticators: [workload], signingKeyStore: store });
  const before = (await issuer.jwks()).keys.map((k) => k.kid);
  await expect(issuer.rotateKeys()).rejects.toThrow('disk full');
  expect((await issuer.jwks()).keys.map((k) => k.kid)).toEqual(before);
  expect(held.value!.keys).toHaveLength(1);
});

test('a store that is not one, and a file that is not a key file, are refused', async () => {
  await expect(createIssuer({ issuer: 'https://op.example.com', authenticators: [workload], signingKeyStore: {} as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  const dir = await mkdtemp(join(tmpdir(), 'oidc2-keys-'));
  const file = join(dir, 'bad.json');
  await writeFile(file, '{"keys":"no"}');
  await expect(createIssuer({ issuer: 'https://op.example.com', authenticators: [workload], signingKeyStore: fileSigningKeyStore(file) })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ keys: 'no' });
});
