// One load measurement against a bench server: wrk (with bench/presigned.lua for pre-signed
// requests) when installed, else autocannon in its own process. Both pinned to the core the
// server is not on. Resolves { rps, requests, non2xx, errors, p99Ms, exhausted }.
import { join } from 'node:path';
import { BENCH, pinned } from './env.mjs';
import { run, runJson } from './proc.mjs';

function parseWrk(out) {
  const num = (re) => {
    const m = out.match(re);
    return m ? Number(m[1]) : 0;
  };
  const latency = out.match(/^\s*99%\s+([\d.]+)(us|ms|s)\s*$/m);
  const scale = { us: 1e-3, ms: 1, s: 1e3 };
  const socket = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/^\s*(\d+) requests in/m),
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/),
    errors: socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    p99Ms: latency ? Number(latency[1]) * scale[latency[2]] : NaN,
    exhausted: num(/presigned: .*exhausted=(\d+)/),
  };
}

/**
 * @param t tools()
 * @param o { port, connections, duration (s), headers?: Record<string,string>, presigned?: file,
 *            bodies?: file (requests with bodies, bench/presigned-body.lua's format), path? }
 */
export async function measure(t, o) {
  const url = `http://127.0.0.1:${o.port}${o.path ?? '/hello'}`;
  const file = o.bodies ?? o.presigned;
  if (t.wrk) {
    const argv = ['-t1', `-c${o.connections}`, `-d${o.duration}s`, '--latency'];
    for (const [k, v] of Object.entries(o.headers ?? {})) argv.push('-H', `${k}: ${v}`);
    if (file) argv.push('-s', join(BENCH, o.bodies ? 'presigned-body.lua' : 'presigned.lua'));
    argv.push(url);
    if (file) argv.push('--', file, '1');
    const { code, stdout, stderr } = await run(pinned(t, 1, [t.wrk, ...argv]), { timeoutMs: (o.duration + 60) * 1000 });
    if (code !== 0) throw new Error(`wrk failed (exit ${code}): ${stderr.slice(-2000)}`);
    return parseWrk(stdout);
  }
  const script = join(BENCH, 'lib', 'autocannon-load.mjs');
  const args = { url, connections: o.connections, duration: o.duration, headers: o.headers, presigned: o.presigned, bodies: o.bodies };
  const r = await runJson(pinned(t, 1, [process.execPath, script, JSON.stringify(args)]), { timeoutMs: (o.duration + 60) * 1000 });
  return { ...r, exhausted: r.exhausted ?? 0 };
}
