// Shared by the bench servers: argv is `<mode> <config.json>`, mode one of hello | bearer | oidc2 |
// e2ee. In mode e2ee a server has oidc2 (end-to-end encryption on, as with any credential) before a
// JSON body parser, and two routes that answer the JSON body they were sent: `POST /echo` (default
// policy: plaintext or encrypted) and `POST /sealed` (`encryption: 'required'`), plus the session
// endpoint the adapter answers itself.
// A server prints {"port":N} once it listens and exits when its parent closes stdin.
import { readFileSync } from 'node:fs';
import { loadPackage, rootRequire } from '../lib/env.mjs';

export { loadPackage, rootRequire };

export const mode = process.argv[2];
if (!['hello', 'bearer', 'oidc2', 'e2ee'].includes(mode)) throw new Error(`unknown mode ${mode}`);
/** { oidc2: Oidc2Options, bearer: { publicPem, issuer, audience } } written by the runner. */
export const config = JSON.parse(readFileSync(process.argv[3], 'utf8'));
export const BODY = { hello: 'world' };
/** Listen backlog large enough for the cold-path burst of concurrent connections. */
export const BACKLOG = 4096;
/** The e2ee mode's routes, and the body limit of their parsers (the core's own default). */
export const ECHO = '/echo';
export const SEALED = '/sealed';
export const SESSION_ENDPOINT = '/.well-known/oidc2-session';
export const BODY_LIMIT = 1024 * 1024;

/**
 * The oidc2 options of the config, with the replay store of a service that has been up for a
 * while: its table's pages mapped (`prefault`), as they are once a running service has seen a few
 * tens of thousands of nonces, rather than faulted in one by one during the measured runs. With
 * `replayRedis` (a redis:// URL on loopback, written by the scaling row) the replay store is a
 * RedisReplayStore on its own connected client, so that several processes of one service share it.
 */
export async function oidc2Options() {
  if (!config.replayRedis) {
    const { MemoryReplayStore } = await loadPackage('core');
    return { ...config.oidc2, replayStore: new MemoryReplayStore({ prefault: true }) };
  }
  const client = rootRequire('redis').createClient({ url: config.replayRedis });
  client.on('error', (error) => process.stderr.write(`redis: ${error?.message ?? error}\n`));
  await client.connect();
  const { RedisReplayStore } = await loadPackage('redis');
  return { ...config.oidc2, replayStore: new RedisReplayStore({ client }) };
}

/** The adapter's middleware factory, whatever it is exported as. */
export function factory(mod) {
  const f = mod.oidc2 ?? mod.default;
  if (typeof f !== 'function') throw new Error('the adapter exports no oidc2 function');
  return f;
}

export function announce(port) {
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
