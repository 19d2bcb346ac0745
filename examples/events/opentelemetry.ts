// Turns oidc2 decision events into OpenTelemetry spans and metrics: one span per event (timed by
// the event, an error status on failures), a counter of decisions by type, outcome and code, and a
// histogram of authentication time. Only the OpenTelemetry API is used: the application's SDK set-up
// decides where spans and metrics go.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { SpanKind, SpanStatusCode, type Attributes, type Meter, type Tracer } from '@opentelemetry/api';
import { OIDC2_EVENT_CHANNELS, type Oidc2Event } from '@oidc2/core';

// Event members as span attributes under `oidc2.`; lists and objects as JSON.
function attributesOf(event: Oidc2Event): Attributes {
  const attributes: Attributes = {};
  for (const [name, value] of Object.entries(event)) {
    if (name === 'time' || value === undefined) continue;
    attributes[`oidc2.${name}`] = typeof value === 'object' ? JSON.stringify(value) : (value as string | number | boolean);
  }
  return attributes;
}

/** Subscribes to every oidc2 channel; returns the function that unsubscribes. */
export function traceOidc2Events(tracer: Tracer, meter: Meter): () => void {
  const decisions = meter.createCounter('oidc2.events', { description: 'oidc2 decision events' });
  const authTime = meter.createHistogram('oidc2.authentication.duration', { unit: 'ms', description: 'time to decide whether a request reaches its route' });
  const handler = (message: unknown): void => {
    const event = message as Oidc2Event;
    decisions.add(1, { 'oidc2.type': event.type, 'oidc2.outcome': event.outcome, ...(event.code ? { 'oidc2.code': event.code } : {}) });
    const started = event.type === 'authentication' ? event.time - event.durationMs : event.time;
    if (event.type === 'authentication') authTime.record(event.durationMs, { 'oidc2.outcome': event.outcome });
    const span = tracer.startSpan(`oidc2.${event.type}`, { kind: SpanKind.INTERNAL, startTime: started, attributes: attributesOf(event) });
    if (event.outcome === 'failure') span.setStatus({ code: SpanStatusCode.ERROR, ...(event.code ? { message: event.code } : {}) });
    span.end(event.time);
  };
  const names = Object.values(OIDC2_EVENT_CHANNELS);
  for (const name of names) subscribe(name, handler);
  return () => {
    for (const name of names) unsubscribe(name, handler);
  };
}
