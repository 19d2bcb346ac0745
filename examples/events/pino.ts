// Logs every oidc2 decision event with pino: failures at `warn`, the rest at `debug` (one line per
// request is a lot at `info`). Events carry codes, identifiers and thumbprints, never a token, proof
// or key, so they can go to any log sink as they are.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Logger } from 'pino';
import { OIDC2_EVENT_CHANNELS, type Oidc2Event } from '@oidc2/core';

/** Subscribes `logger` to every oidc2 channel; returns the function that unsubscribes it. */
export function logOidc2Events(logger: Logger): () => void {
  const handler = (message: unknown): void => {
    const event = message as Oidc2Event;
    const level = event.outcome === 'failure' ? 'warn' : 'debug';
    logger[level]({ oidc2: event }, `oidc2 ${event.type} ${event.outcome}${event.code ? ` ${event.code}` : ''}`);
  };
  const names = Object.values(OIDC2_EVENT_CHANNELS);
  for (const name of names) subscribe(name, handler);
  return () => {
    for (const name of names) unsubscribe(name, handler);
  };
}
