// Properties of the signature base (RFC 9421 section 2.5) for every derived component and for
// field components: it fails only with coded errors, agrees with `http-message-signatures` where
// that package follows the RFC (docs/http-message-signatures.md lists where it does not), and
// `@query-param` agrees with the WHATWG form-urlencoded parser re-encoded as section 2.2.8 says.
import fc from 'fast-check';
import { httpbis, type Request as HmsRequest } from 'http-message-signatures';
import { componentValue, parseSignatureInput, serializeSignatureParams, signatureBase, DERIVED_COMPONENTS } from '../../packages/core/src/rfc9421/index';
import type { HttpRequest, HttpResponse } from '../../packages/core/src/message';
import { outcome, runs } from './support';

const FORM_SAFE = /[A-Za-z0-9*\-._]/;
/** Section 2.2.8's encoding of a decoded string: UTF-8, every byte but ASCII alphanumerics and *-._ percent-encoded. */
function formEncode(decoded: string): string {
  let out = '';
  for (const b of Buffer.from(decoded, 'utf8')) out += b < 128 && FORM_SAFE.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

// Query text from pieces that reach every branch of the form parser: escapes valid and not,
// `+`, separators, non-ASCII and lone surrogates.
const queryPiece = fc.constantFrom('a', 'B', 'z9', '=', '&', '&&', '+', '%20', '%2B', '%2b', '%41', '%', '%4', '%zz', '%C3%A9', '%FF', '%E2%82', 'é', '€', '\ud83d\ude00', '\ud800', '~', '*', '-', '.', '_', "'", '!', '(', ')', '/', '?', ';', ',', ':', '@', '$', ' ');
const query = fc.array(queryPiece, { maxLength: 16 }).map((p) => p.join(''));

describe('@query-param (RFC 9421 section 2.2.8)', () => {
  it('agrees with URLSearchParams re-encoded: the value of every name that occurs once, refusal of a repeated one', () => {
    fc.assert(
      fc.property(query, (q) => {
        const request: HttpRequest = { method: 'GET', url: `/p?${q}`, headers: { host: ['a.example'] } };
        // The reference is the WHATWG URL's searchParams: Node 20's `new URLSearchParams(string)`
        // decodes a raw non-ASCII character after an invalid escape as U+FFFD (`%E2 é` -> `\uFFFD \uFFFD`),
        // where the WHATWG parser, URL's searchParams and this implementation give `\uFFFD é`.
        // (A final `&` keeps the URL parser from trimming trailing spaces; it adds no parameter.)
        const reference = new URL(`http://a.example/?${q}&`).searchParams;
        const names = new Set([...reference.keys()]);
        for (const name of names) {
          const encoded = formEncode(name);
          const values = reference.getAll(name);
          const id = `"@query-param";name="${encoded}"`;
          // Different raw names may decode alike (`a` and `%61`): both are one name to the form parser.
          const expected = values.length === 1 ? { value: formEncode(values[0]!) } : { code: 'request_malformed' };
          expect(outcome(() => componentValue(request, id))).toEqual(expected);
        }
        expect(outcome(() => componentValue(request, '"@query-param";name="never-sent-xyz"'))).toEqual({ code: 'component_missing' });
      }),
      runs(2000),
    );
  });

  it('its value is always in the encoded form, and encoding that form again changes nothing', () => {
    fc.assert(
      fc.property(query, (q) => {
        const request: HttpRequest = { method: 'GET', url: `/p?${q}`, headers: {} };
        for (const name of new Set(new URL(`http://a.example/?${q}&`).searchParams.keys())) {
          const result = outcome(() => componentValue(request, `"@query-param";name="${formEncode(name)}"`));
          if ('value' in result) {
            expect(result.value).toMatch(/^(?:[A-Za-z0-9*\-._]|%[0-9A-F]{2})*$/);
            const again: HttpRequest = { method: 'GET', url: `/p?x=${result.value}`, headers: {} };
            expect(componentValue(again, '"@query-param";name="x"')).toBe(result.value);
          }
        }
      }),
      runs(1000),
    );
  });
});

// Requests whose target is already WHATWG-canonical and whose method is upper case: the domain on
// which http-message-signatures follows the RFC.
const canonicalUrl = fc
  .webUrl({ withQueryParameters: true, validSchemes: ['https', 'http'] })
  .filter((u) => {
    try {
      // The package reads the target through the WHATWG URL parser, which drops an empty query
      // from @request-target (`/p?` becomes `/p`); the RFC takes the request line as sent.
      return new URL(u).href === u && !/[^\x20-\x7e]/.test(u) && !u.endsWith('?');
    } catch {
      return false;
    }
  });
const fieldName = fc.constantFrom('content-type', 'x-a', 'x-long-name', 'authorization', 'txn-token');
const fieldValue = fc.stringMatching(/^[!-~]([ !-~]{0,30}[!-~])?$/);
const headers = fc.dictionary(fieldName, fieldValue, { maxKeys: 4 });

describe('signature base against http-message-signatures', () => {
  const COMMON = ['@method', '@target-uri', '@authority', '@scheme', '@request-target', '@path', '@query'];

  it('every derived request component and every field gives the same base line', () => {
    fc.assert(
      fc.property(canonicalUrl, fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'), headers, (url, method, h) => {
        const ours: HttpRequest = { method, url, headers: Object.fromEntries(Object.entries(h).map(([k, v]) => [k, [v]])) };
        const theirs: HmsRequest = { method, url, headers: h };
        const fields = [...COMMON, ...Object.keys(h)];
        const base = httpbis.formatSignatureBase(httpbis.createSignatureBase({ fields }, theirs));
        const params = serializeSignatureParams(fields, {});
        expect(signatureBase(ours, fields, params)).toBe(`${base}\n"@signature-params": ${params}`);
      }),
      runs(700),
    );
  });

  it('@status and request components with ;req in a response give the same base lines', () => {
    fc.assert(
      fc.property(canonicalUrl, fc.integer({ min: 100, max: 599 }), headers, (url, status, h) => {
        const request: HttpRequest = { method: 'POST', url, headers: {} };
        const response: HttpResponse = { status, headers: Object.fromEntries(Object.entries(h).map(([k, v]) => [k, [v]])) };
        const fields = ['@status', ...Object.keys(h), '"@method";req', '"@path";req', '"@query";req', '"@authority";req'];
        const base = httpbis.formatSignatureBase(httpbis.createSignatureBase({ fields }, { status, headers: h }, { method: 'POST', url, headers: {} }));
        const params = serializeSignatureParams(fields, {});
        expect(signatureBase(response, fields, params, { request })).toBe(`${base}\n"@signature-params": ${params}`);
      }),
      runs(400),
    );
  });
});

describe('signature base on hostile messages', () => {
  const hostileUrl = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ maxLength: 20, unit: 'binary' }).map((s) => `/${s}`),
    fc.tuple(fc.constantFrom('https://', 'http://', 'HTTPS://', 'x+y://', '1://', '://'), fc.string({ maxLength: 30 })).map(([a, b]) => a + b),
    fc.constantFrom('*', '', 'a.example:443', '//x', '/a#b?c', 'https://[::1]:8443/x?y', 'https://a.example:99999/', 'https://u@a.example/'),
  );
  const hostileHeaders = fc.dictionary(
    fc.constantFrom('host', 'x-a', 'content-digest', 'signature', 'x-d'),
    fc.array(fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('a, b', 'a=1, b=(1 2)', ' \t', 'x\r\n y', '\u00e9', '\u2603', 'sha-256=:AAAA:')), { maxLength: 3 }),
    { maxKeys: 4 },
  );
  const components = fc.array(
    fc.constantFrom(...DERIVED_COMPONENTS.filter((c) => c !== '@query-param'), '"@query-param";name="a"', 'host', 'x-a', '"x-a";bs', '"x-d";sf', '"x-d";key="a"', '"content-digest";sf', '"content-digest";key="sha-256"', '"x-a";req', '"signature";sf'),
    { maxLength: 6 },
  );

  it('fails only with coded errors, for requests and responses', () => {
    fc.assert(
      fc.property(hostileUrl, fc.string({ maxLength: 8 }), hostileHeaders, components, fc.integer({ min: -5, max: 1200 }), (url, method, h, cs, status) => {
        const unique = [...new Set(cs)];
        const params = serializeSignatureParams(unique, { created: 1 });
        const request: HttpRequest = { method, url, headers: h, scheme: 'https' };
        outcome(() => signatureBase(request, unique, params));
        outcome(() => signatureBase({ status, headers: h }, unique, params, { request }));
        // Whatever a base holds is what the Signature-Input that names these components re-serializes.
        const entry = parseSignatureInput([`s=${params}`]).get('s')!;
        expect(entry.signatureParams).toBe(params);
      }),
      runs(3000),
    );
  });

  it('never signs a control character, a non-ASCII character outside ;bs, or a line break', () => {
    fc.assert(
      fc.property(hostileUrl, hostileHeaders, (url, h) => {
        const request: HttpRequest = { method: 'GET', url, headers: h };
        const cs = ['@method', '@path', '@query', '@request-target', 'x-a', '"x-a";bs'].filter((c) => !c.includes('x-a') || h['x-a'] !== undefined);
        const result = outcome(() => signatureBase(request, cs, serializeSignatureParams(cs, {})));
        if ('value' in result) expect(result.value).toMatch(/^[\x20-\x7e\t\n]*$/);
        if ('value' in result) expect(result.value.split('\n')).toHaveLength(cs.length + 1);
      }),
      runs(2000),
    );
  });
});
