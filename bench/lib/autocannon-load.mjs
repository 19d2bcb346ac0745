// The load generator when wrk is not installed: autocannon in its own process (pinned by the
// runner), replaying pre-signed requests once each like bench/presigned.lua. Prints one JSON line.
//
// Usage: node bench/lib/autocannon-load.mjs '{"url":...,"connections":32,"duration":3,"headers":{},"presigned":"file"}'
//        ("bodies":"file" instead of "presigned" for requests with bodies, bench/presigned-body.lua's format)
import { readFileSync } from 'node:fs';
import { rootRequire } from './env.mjs';
import { readPresignedBodies } from './presign.mjs';

const autocannon = rootRequire('autocannon');
const opts = JSON.parse(process.argv[2]);
let requests;
let stats = () => ({});
if (opts.presigned) {
  const [ict, ...lines] = readFileSync(opts.presigned, 'utf8').split('\n').filter(Boolean);
  let next = 0;
  let exhausted = 0;
  requests = [
    {
      setupRequest(req) {
        const line = lines[next];
        if (line === undefined) {
          exhausted++;
          return { ...req, path: '/__exhausted' };
        }
        next++;
        const [input, signature] = line.split('\t');
        return { ...req, headers: { ...req.headers, 'identity-certification-token': ict, 'signature-input': input, signature } };
      },
    },
  ];
  stats = () => ({ loaded: lines.length, used: next, exhausted });
} else if (opts.bodies) {
  const file = readPresignedBodies(opts.bodies);
  let next = 0;
  let exhausted = 0;
  requests = [
    {
      setupRequest(req) {
        const r = file.requests[next];
        if (r === undefined) {
          exhausted++;
          return { ...req, method: 'GET', path: '/__exhausted', body: undefined };
        }
        next++;
        return { ...req, method: file.method, path: file.path, headers: { ...req.headers, ...file.headers, ...r.headers, 'Content-Length': String(r.body.length) }, body: r.body };
      },
    },
  ];
  stats = () => ({ loaded: file.requests.length, used: next, exhausted });
}
const result = await autocannon({
  url: opts.url,
  connections: opts.connections,
  duration: opts.duration,
  headers: opts.headers ?? {},
  requests,
});
const done = result.requests.total;
process.stdout.write(
  `${JSON.stringify({
    rps: done / result.duration,
    requests: done,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    p99Ms: result.latency.p99,
    ...stats(),
  })}\n`,
);
