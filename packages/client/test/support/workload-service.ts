// A service for the client's workload tests that needs no socket: a `fetch` that runs the core's
// own exchange (createOidc2Service, with `workloads`, its credentials and end-to-end encryption) in
// process, with a route that reports what it saw: the caller, its proof, the Txn-Token's
// transaction and the body as the route received it.
import { createOidc2Service, normalizeFields, type HttpRequest, type HttpResponse, type Identity, type Oidc2Options } from '@oidc2/core';

export const SERVICE_URL = 'http://inventory.test';

/** What the route saw of one request. */
export interface Seen {
  method: string;
  path: string;
  headers: Record<string, string[]>;
  identity: Identity | null;
  /** The body the route received (decrypted in a session). */
  body: string;
}

export interface WorkloadService {
  fetch: typeof fetch;
  seen: Seen[];
}

/** What every route answers: who called, how, and in which transaction. */
export function report(identity: Identity | null, body: string): Record<string, unknown> {
  return {
    caller: identity?.subject ?? null,
    kind: identity?.kind ?? null,
    issuer: identity?.issuer ?? null,
    proof: identity?.proof ?? null,
    transaction: identity?.transaction?.transactionId ?? null,
    echo: body,
  };
}

/** Starts the service with `options` (audiences default to {@link SERVICE_URL}). */
export function workloadService(options: Omit<Oidc2Options, 'audiences'> & { audiences?: string[] }): WorkloadService {
  const service = createOidc2Service({ audiences: [SERVICE_URL], ...options } as Oidc2Options);
  const seen: Seen[] = [];

  function toResponse(message: HttpResponse): Response {
    const headers = new Headers();
    for (const [name, lines] of Object.entries(message.headers)) for (const line of lines) headers.append(name, line);
    const body = message.body && message.body.length > 0 && message.status !== 204 && message.status !== 304 ? message.body : null;
    return new Response(body as BodyInit | null, { status: message.status, headers });
  }

  async function handle(req: Request): Promise<HttpResponse> {
    const url = new URL(req.url);
    const body = new Uint8Array(await req.arrayBuffer());
    const request: HttpRequest = { method: req.method, url: url.pathname + url.search, headers: normalizeFields(req.headers), scheme: 'http' };
    const exchange = service.exchange(request);
    const admission = await exchange.admit(body.length > 0 ? body : undefined);
    if (admission.answered) return { ...admission.response, body: admission.response.body as Uint8Array | undefined };
    const plaintext = new TextDecoder().decode((admission.body as Uint8Array | undefined) ?? new Uint8Array(0));
    seen.push({ method: req.method, path: url.pathname, headers: request.headers, identity: admission.identity, body: plaintext });
    const answer = new TextEncoder().encode(JSON.stringify(report(admission.identity, plaintext)));
    const sent = await exchange.respond({ status: 200, headers: { 'content-type': ['application/json'] }, body: answer });
    return { status: sent.status, headers: sent.headers, body: sent.body as Uint8Array | undefined };
  }

  return { seen, fetch: async (input, init) => toResponse(await handle(new Request(input, init))) };
}
