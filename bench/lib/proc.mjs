// Child processes: one-shot commands with captured output, and bench servers that announce a port.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BENCH, pinned } from './env.mjs';

/** Runs argv to completion (killed after `timeoutMs`); resolves { code, stdout, stderr }. */
export function run(argv, { timeoutMs = 120_000, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/** Runs a node script and parses the JSON on its last stdout line. */
export async function runJson(argv, options) {
  const { code, stdout, stderr } = await run(argv, options);
  const last = stdout.trim().split('\n').pop();
  if (code !== 0 || !last) throw new Error(`${argv.slice(-2).join(' ')} failed (exit ${code}):\n${stderr.slice(-4000)}`);
  return JSON.parse(last);
}

/**
 * Starts bench/servers/<framework>.mjs in `mode`, pinned to `core` (a taskset list such as `'0,1'`
 * for several workers); with `workers` > 1 as that many processes behind one port
 * (bench/servers/cluster.mjs). Resolves { port, stop }. The server exits when its stdin closes, so
 * it never outlives the runner.
 */
export function startServer(t, framework, mode, configPath, core = 0, workers = 1) {
  // BENCH_SERVER_ARGS passes node flags to every server, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
  const flags = (process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean);
  const args = workers > 1 ? [join(BENCH, 'servers', 'cluster.mjs'), framework, String(workers), mode, configPath] : [join(BENCH, 'servers', `${framework}.mjs`), mode, configPath];
  const argv = pinned(t, core, [process.execPath, ...flags, ...args]);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    let buffered = '';
    let started = false;
    const timer = setTimeout(() => fail(new Error(`${framework}/${mode} did not start in 30 s`)), 30_000);
    function fail(error) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    }
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => {
      if (started) return;
      buffered += d;
      const line = buffered.split('\n').find((l) => l.startsWith('{'));
      if (!line) return;
      started = true;
      clearTimeout(timer);
      const { port } = JSON.parse(line);
      resolve({
        port,
        pid: child.pid,
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.stdin.end();
            setTimeout(() => child.kill('SIGKILL'), 3000).unref();
          }),
      });
    });
    child.on('exit', (code) => {
      if (!started) fail(new Error(`${framework}/${mode} exited with ${code} before listening:\n${stderr.slice(-4000)}`));
    });
  });
}
