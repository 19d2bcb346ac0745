// Route policies over one identity shape: users (ICT) and workloads (WIT). A route that names
// workloads admits only those of its trust domains and identifiers; a user there is refused (403).
import { applyRoutePolicy, assertRoutePolicy, isOidc2Error, type Identity, type RoutePolicy } from '../src/index';

function workload(subject: string, trustDomain: string): Identity {
  return { kind: 'workload', subject, issuer: '', trustDomain, claims: { sub: subject, env: 'prod' }, contexts: [], publicKey: {}, thumbprint: 't', proof: 'http-signature', binding: { proof: 'http-signature', signResponse: false } };
}
const user: Identity = { kind: 'user', subject: 'alice', issuer: 'https://op.example', claims: { sub: 'alice' }, contexts: ['mfa'], publicKey: {}, thumbprint: 't', proof: 'http-signature', binding: { proof: 'http-signature', signResponse: false } };
const billing = workload('spiffe://prod.example/ns/billing/sa/api', 'prod.example');
const staging = workload('spiffe://staging.example/ns/billing/sa/api', 'staging.example');

async function outcome(identity: Identity, policy: RoutePolicy): Promise<string> {
  try {
    await applyRoutePolicy(identity, policy);
    return 'admitted';
  } catch (error) {
    if (isOidc2Error(error)) return `${error.code}/${error.status}`;
    throw error;
  }
}

describe('route policy: workloads', () => {
  it('admits workloads of the named trust domains (case-insensitively), refuses others and users with 403 access_denied', async () => {
    const policy = { workloads: { trustDomains: ['Prod.Example'] } };
    expect(await outcome(billing, policy)).toBe('admitted');
    expect(await outcome(staging, policy)).toBe('access_denied/403');
    expect(await outcome(user, policy)).toBe('access_denied/403');
    expect(await outcome(user, { workloads: {} })).toBe('access_denied/403');
    expect(await outcome(staging, { workloads: {} })).toBe('admitted');
  });

  it('admits workload identifiers equal to a string or matching a RegExp; both members must hold', async () => {
    expect(await outcome(billing, { workloads: { identifiers: ['spiffe://prod.example/ns/billing/sa/api'] } })).toBe('admitted');
    expect(await outcome(billing, { workloads: { identifiers: ['spiffe://prod.example/ns/billing'] } })).toBe('access_denied/403');
    expect(await outcome(billing, { workloads: { identifiers: [/^spiffe:\/\/[^/]+\/ns\/billing\//] } })).toBe('admitted');
    expect(await outcome(staging, { workloads: { trustDomains: ['prod.example'], identifiers: [/^spiffe:\/\/[^/]+\/ns\/billing\//] } })).toBe('access_denied/403');
    // The other requirements still apply to an admitted workload.
    expect(await outcome(billing, { workloads: {}, claims: { env: 'test' } })).toBe('access_denied/403');
    expect(await outcome(billing, { workloads: {}, contexts: ['mfa'] })).toBe('context_required/403');
    expect(await outcome(billing, { workloads: {}, allow: (id) => id.kind === 'workload' })).toBe('admitted');
  });

  it('is checked once where it is declared', () => {
    const refused = (policy: unknown, code: string) => expect(() => assertRoutePolicy(policy as RoutePolicy)).toThrow(expect.objectContaining({ code }));
    refused({ workloads: { trustDomain: ['x'] } }, 'ERR_UNKNOWN_OPTION');
    refused({ workloads: 'prod.example' }, 'ERR_INVALID_ARG_TYPE');
    refused({ workloads: { trustDomains: 'prod.example' } }, 'ERR_INVALID_ARG_VALUE');
    refused({ workloads: { trustDomains: [''] } }, 'ERR_INVALID_ARG_VALUE');
    refused({ workloads: { identifiers: [42] } }, 'ERR_INVALID_ARG_VALUE');
    // A global or sticky RegExp keeps state between tests: refused.
    refused({ workloads: { identifiers: [/billing/g] } }, 'ERR_INVALID_ARG_VALUE');
    refused({ workloads: { identifiers: [/billing/y] } }, 'ERR_INVALID_ARG_VALUE');
    expect(() => assertRoutePolicy({ workloads: { trustDomains: ['prod.example'], identifiers: ['spiffe://prod.example/a', /^spiffe:/] } })).not.toThrow();
  });
});
