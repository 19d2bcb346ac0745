// N processes of one bench server behind one port, with node:cluster (the primary accepts and hands
// connections to the workers in turn): argv `<framework> <workers> <mode> <config.json>`. Prints
// {"port":N} once every worker listens, and stops the workers when its stdin closes, like a single
// bench server. Used by the scaling row (bench/lib/scale.mjs); the workers share nothing but the
// port and, for oidc2, the Redis replay store named in the config.
import cluster from 'node:cluster';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [framework, count, mode, configPath] = process.argv.slice(2);
const workers = Number(count);
if (!Number.isInteger(workers) || workers < 1) throw new Error(`bad worker count ${count}`);

cluster.setupPrimary({ exec: join(dirname(fileURLToPath(import.meta.url)), `${framework}.mjs`), args: [mode, configPath], silent: true });
const ports = new Set();
let listening = 0;
for (let i = 0; i < workers; i++) {
  const worker = cluster.fork();
  let buffered = '';
  let announced = false;
  worker.process.stdout.on('data', (d) => {
    if (announced) return;
    buffered += d;
    const line = buffered.split('\n').find((l) => l.startsWith('{'));
    if (!line) return;
    announced = true;
    ports.add(JSON.parse(line).port);
    if (++listening === workers) {
      if (ports.size !== 1) throw new Error(`workers listen on different ports: ${[...ports].join(', ')}`);
      process.stdout.write(`${JSON.stringify({ port: [...ports][0], workers })}\n`);
    }
  });
  worker.process.stderr.pipe(process.stderr);
}
cluster.on('exit', (worker, code) => {
  if (!stopping) {
    process.stderr.write(`worker ${worker.process.pid} exited with ${code}\n`);
    process.exit(1);
  }
});
let stopping = false;
process.stdin.resume();
process.stdin.on('end', () => {
  stopping = true;
  for (const worker of Object.values(cluster.workers)) worker.process.stdin.end();
  const deadline = setTimeout(() => process.exit(0), 3000);
  cluster.on('exit', () => {
    if (Object.keys(cluster.workers).length === 0) {
      clearTimeout(deadline);
      process.exit(0);
    }
  });
});
