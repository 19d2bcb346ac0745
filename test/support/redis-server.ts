// A real redis-server for the Redis tests, without persistence, on a loopback TCP port or on a Unix
// socket, and clients that surface failures as rejected commands.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createClient } from 'redis';

export type RedisClient = ReturnType<typeof createClient>;

/** Where a server listens: a loopback port or a Unix socket path. */
export type RedisAddress = { host: '127.0.0.1'; port: number } | { path: string };

export interface RedisServer {
  address: RedisAddress;
  stop(): Promise<void>;
}

/** `describe`, or `describe.skip` without redis-server (which CI must have: .ci/run installs it). */
export function describeWithRedis(what: string): jest.Describe {
  const have = spawnSync('redis-server', ['--version']).status === 0;
  if (!have && process.env.CI) throw new Error('redis-server is required in CI (.ci/run installs it)');
  if (!have) console.warn(`redis-server not found: skipping the ${what} tests`);
  return have ? describe : describe.skip;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts redis-server at `address` and waits until it answers PING (10 s at most). */
export async function startRedisServer(address: RedisAddress): Promise<RedisServer> {
  const listen = 'path' in address ? ['--port', '0', '--unixsocket', address.path, '--unixsocketperm', '700'] : ['--port', String(address.port), '--bind', '127.0.0.1'];
  const child: ChildProcess = spawn('redis-server', [...listen, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = createClient({ socket: { ...address, reconnectStrategy: false } });
    probe.on('error', () => {});
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') {
        probe.destroy();
        break;
      }
    } catch {
      // not listening yet
    }
    if (probe.isOpen) probe.destroy();
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('redis-server did not start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    address,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A connected client; with `reconnect` it keeps trying every 50 ms, else it gives up at once. */
export async function connectRedis(address: RedisAddress, options: { reconnect?: boolean } = {}): Promise<RedisClient> {
  const client = createClient({ socket: { ...address, ...(options.reconnect ? { reconnectStrategy: () => 50 } : { reconnectStrategy: false as const }) } });
  client.on('error', () => {}); // failures surface as rejected commands, which the tests assert on
  await client.connect();
  return client;
}
