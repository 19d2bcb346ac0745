// One soak target: `node --expose-gc soak/server.mjs <express|fastify|koa> <config.json>` serves
// GET /whoami and POST /echo behind the framework's oidc2 adapter on 127.0.0.1 (each answer names
// the caller and whether its request was MAC-signed in a session), prints {"port":N}
// once it listens, answers each `stats` line on stdin with one JSON line (heap and RSS after two
// full collections, event-loop delay percentiles since the last `stats`), and exits when stdin ends.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { loadPackage, rootRequire } from '../bench/lib/env.mjs';

const [framework, configPath] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const adapter = await loadPackage(framework);
const oidc2 = adapter.oidc2 ?? adapter.default;
const answer = (identity, body) => ({ caller: identity?.subject ?? null, mac: identity?.sessionMac === true, echo: body ?? null });

let listener;
if (framework === 'express') {
  const express = rootRequire('express');
  const app = express();
  app.use(oidc2(config), express.json());
  app.get('/whoami', (req, res) => res.json(answer(req.identity)));
  app.post('/echo', (req, res) => res.json(answer(req.identity, req.body)));
  app.use(adapter.oidc2ErrorHandler());
  listener = app;
} else if (framework === 'koa') {
  const Koa = rootRequire('koa');
  const { bodyParser } = rootRequire('@koa/bodyparser');
  const app = new Koa();
  app.silent = true;
  app.use(oidc2(config));
  app.use(bodyParser());
  app.use((ctx) => {
    if (ctx.path === '/whoami' && ctx.method === 'GET') ctx.body = answer(ctx.state.identity);
    else if (ctx.path === '/echo' && ctx.method === 'POST') ctx.body = answer(ctx.state.identity, ctx.request.body);
  });
  listener = app.callback();
} else if (framework === 'fastify') {
  const Fastify = rootRequire('fastify');
  const app = Fastify({ logger: false, serverFactory: (handler) => createServer(handler) });
  await app.register(oidc2, config);
  app.get('/whoami', (request) => answer(request.identity));
  app.post('/echo', (request) => answer(request.identity, request.body));
  await app.ready();
  listener = (req, res) => app.server.emit('request', req, res);
} else {
  throw new Error(`unknown framework ${framework}`);
}

// The load generator's fetch closes a connection after 4 s idle. A server that closes first (Node's
// default is 5 s) races with a request just sent on that connection, which then fails as `fetch
// failed` on a loaded machine: a failure of the harness, not of the service, so the client closes first.
const server = createServer({ maxHeaderSize: 65536, keepAliveTimeout: 65_000 }, listener);
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
server.listen(0, '127.0.0.1', 4096, () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));

const ms = (ns) => Math.round(ns / 1e4) / 100;
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'stats') return;
  globalThis.gc();
  globalThis.gc();
  const { heapUsed, rss } = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ heapUsed, rss, eldP50: ms(delay.percentile(50)), eldP99: ms(delay.percentile(99)), eldMax: ms(delay.max) })}\n`);
  delay.reset();
});
process.stdin.on('end', () => process.exit(0));
