// The logging and tracing recipes of docs/events.md, run as they are printed there (the files in
// examples/events/ are the recipes; this test also checks the guide quotes them verbatim) against a
// real Express service, with pino writing to a stream and the OpenTelemetry SDK's in-memory exporters.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { SpanStatusCode } from '@opentelemetry/api';
import { signRequest } from '@oidc2/core';
import { logOidc2Events } from '../../examples/events/pino';
import { traceOidc2Events } from '../../examples/events/opentelemetry';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../support/credentials';
import { startFramework, type FrameworkService } from '../support/frameworks';
import { sendE2ee } from '../support/e2ee-caller';

const ROOT = resolve(__dirname, '../..');

let callers: TestIssuer;
let callerKey: TestKey;
let callerIct: string;
let svc: FrameworkService;
beforeAll(async () => {
  callers = await newIssuer('https://op.example.test');
  const services = await newIssuer('https://attest.example.test');
  callerKey = await newKey('ES256');
  callerIct = await callers.mint(callerKey, { subject: 'alice' });
  const serviceKey = await newKey('ES256');
  const serviceIct = await services.mint(serviceKey, { subject: 'svc', lifetime: 3600 });
  svc = await startFramework('express', (url) => ({ issuers: [{ issuer: callers.issuer, jwks: callers.jwks }], audiences: [url], credential: { ict: serviceIct, privateKey: serviceKey.privateJwk } }));
});
afterAll(() => svc.close());

// One accepted and one refused request.
async function traffic(): Promise<void> {
  const ok = await signRequest({ method: 'GET', url: `${svc.url}/whoami`, headers: {} }, { ict: callerIct, key: callerKey.signer, signResponse: true });
  expect((await sendE2ee(svc.url, ok)).status).toBe(200);
  expect((await sendE2ee(svc.url, { method: 'GET', url: `${svc.url}/whoami`, headers: {} })).status).toBe(401);
}

it('docs/events.md quotes both recipes verbatim', () => {
  const guide = readFileSync(resolve(ROOT, 'docs/events.md'), 'utf8');
  for (const file of ['examples/events/pino.ts', 'examples/events/opentelemetry.ts']) {
    expect(guide).toContain(readFileSync(resolve(ROOT, file), 'utf8').trim());
  }
});

it('pino: one line per event, failures at warn with their code', async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const stop = logOidc2Events(pino({ level: 'debug' }, sink));
  try {
    await traffic();
  } finally {
    stop();
  }
  const auth = lines.filter((l) => (l.oidc2 as { type: string }).type === 'authentication');
  expect(auth.map((l) => [l.level, (l.oidc2 as { outcome: string }).outcome, (l.oidc2 as { code?: string }).code])).toEqual([
    [20, 'success', undefined],
    [40, 'failure', 'ict_missing'],
  ]);
  expect(auth[1]!.msg).toBe('oidc2 authentication failure ict_missing');
  expect(JSON.stringify(lines)).not.toContain(callerIct.slice(0, 20));
});

it('OpenTelemetry: spans with attributes and error status, a counter and a histogram', async () => {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const stop = traceOidc2Events(tracerProvider.getTracer('oidc2-test'), meterProvider.getMeter('oidc2-test'));
  try {
    await traffic();
  } finally {
    stop();
  }
  const auth = spans.getFinishedSpans().filter((s) => s.name === 'oidc2.authentication');
  expect(auth).toHaveLength(2);
  expect(auth[0]!.attributes).toMatchObject({ 'oidc2.outcome': 'success', 'oidc2.subject': 'alice', 'oidc2.path': '/whoami', 'oidc2.thumbprint': callerKey.thumbprint });
  expect(auth[0]!.status.code).not.toBe(SpanStatusCode.ERROR);
  expect(auth[1]!.attributes).toMatchObject({ 'oidc2.outcome': 'failure', 'oidc2.code': 'ict_missing', 'oidc2.status': 401 });
  expect(auth[1]!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'ict_missing' });
  expect(spans.getFinishedSpans().filter((s) => s.name === 'oidc2.response_signing')).toHaveLength(2);

  await reader.forceFlush();
  const exported = metrics.getMetrics().flatMap((m) => m.scopeMetrics.flatMap((s) => s.metrics));
  const counter = exported.find((m) => m.descriptor.name === 'oidc2.events')!;
  const count = (type: string, outcome: string) =>
    counter.dataPoints.filter((p) => p.attributes['oidc2.type'] === type && p.attributes['oidc2.outcome'] === outcome).reduce((n, p) => n + (p.value as number), 0);
  expect(count('authentication', 'success')).toBe(1);
  expect(count('authentication', 'failure')).toBe(1);
  const histogram = exported.find((m) => m.descriptor.name === 'oidc2.authentication.duration')!;
  expect(histogram.dataPoints.reduce((n, p) => n + (p.value as { count: number }).count, 0)).toBe(2);
  await meterProvider.shutdown();
  await tracerProvider.shutdown();
});
