// RFC 9421 section 2.2.5 on real sockets: a request line in absolute form (`POST http://host/path
// HTTP/1.1`, as a client sends to a forward proxy) has `@request-target` = the absolute URI, and every
// adapter tells the core so; origin-form keeps its origin-form value.
import { FRAMEWORKS, handSigned, json, send, signedWire, startedForFile } from './support';

const started = startedForFile();

const COMPONENTS = ['@method', '@path', '@query', '@request-target', 'identity-certification-token', 'content-type', 'content-digest'];
const outcome = (r: { status: number; code: string | undefined }) => ({ status: r.status, code: r.code });

describe.each(FRAMEWORKS)('@request-target in absolute form on %s', (framework) => {
  it('a signature over the absolute URI verifies when the request line carries it', async () => {
    const origin = started.services[framework].url;
    const request = await handSigned(started.parties, origin, { body: '{"n":1}', components: COMPONENTS, absoluteForm: true });
    expect(request.target).toBe(`${origin}/echo`);
    const response = await send(origin, request);
    expect(outcome(response)).toEqual({ status: 200, code: undefined });
    expect(json(response)).toMatchObject({ framework, caller: 'alice', echo: { n: 1 } });
  });

  it('a signature over the origin-form is signature_invalid when the request line carried the absolute URI', async () => {
    const origin = started.services[framework].url;
    const request = await handSigned(started.parties, origin, { body: '{"n":1}', components: COMPONENTS });
    expect(outcome(await send(origin, { ...request, target: `${origin}/echo` }))).toEqual({ status: 401, code: 'signature_invalid' });
  });

  it('origin-form is unchanged: a signature over it verifies, one over the absolute URI does not', async () => {
    const origin = started.services[framework].url;
    const plain = await signedWire(started.parties, 'GET', `${origin}/whoami`, { options: { components: ['@request-target'] } });
    expect(outcome(await send(origin, plain))).toEqual({ status: 200, code: undefined });
    const request = await handSigned(started.parties, origin, { body: '{"n":1}', components: COMPONENTS, absoluteForm: true });
    expect(outcome(await send(origin, { ...request, target: '/echo' }))).toEqual({ status: 401, code: 'signature_invalid' });
  });
});
