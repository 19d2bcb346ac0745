// Fuzz target: the signature-base builder against its reference paths: http-message-signatures on
// the domain where that package follows RFC 9421 (WHATWG-canonical targets, upper-case methods,
// plain fields), the WHATWG form parser for @query-param, and only coded errors on anything.
import fc from 'fast-check';
import { httpbis } from 'http-message-signatures';
import { componentValue, serializeSignatureParams, signatureBase, DERIVED_COMPONENTS } from '../packages/core/src/rfc9421/index';
import type { HttpRequest } from '../packages/core/src/message';
import { outcome } from '../test/property/support';
import { fuzz } from './harness';

const FORM_SAFE = /[A-Za-z0-9*\-._]/;
function formEncode(decoded: string): string {
  let out = '';
  for (const b of Buffer.from(decoded, 'utf8')) out += b < 128 && FORM_SAFE.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

const url = fc.webUrl({ withQueryParameters: true, validSchemes: ['https', 'http'] }).filter((u) => {
  try {
    return new URL(u).href === u && !/[^\x20-\x7e]/.test(u) && !u.endsWith('?');
  } catch {
    return false;
  }
});
const headers = fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/).filter((n) => n !== 'host'), fc.stringMatching(/^[!-~]([ !-~]{0,40}[!-~])?$/), { maxKeys: 6 });

it('agrees with http-message-signatures on every derived request component and field', async () => {
  const report = await fuzz(
    'signature-base-reference',
    fc.property(url, fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'), headers, (u, method, h) => {
      const fields = ['@method', '@target-uri', '@authority', '@scheme', '@request-target', '@path', '@query', ...Object.keys(h)];
      const ours: HttpRequest = { method, url: u, headers: Object.fromEntries(Object.entries(h).map(([k, v]) => [k, [v]])) };
      const base = httpbis.formatSignatureBase(httpbis.createSignatureBase({ fields }, { method, url: u, headers: h }));
      const params = serializeSignatureParams(fields, {});
      expect(signatureBase(ours, fields, params)).toBe(`${base}\n"@signature-params": ${params}`);
    }),
  );
  expect(report.findings).toEqual([]);
});

const queryPiece = fc.oneof(fc.string({ maxLength: 3, unit: 'binary' }), fc.constantFrom('=', '&', '+', '%', '%2', '%zz', '%C3%A9', '%FF', '%E2%82', '%2B'));
it('@query-param agrees with the WHATWG form parser, re-encoded', async () => {
  const report = await fuzz(
    'query-param',
    fc.property(fc.array(queryPiece, { maxLength: 20 }).map((p) => p.join('').replace(/[#\t\n\r]/g, '')), (q) => {
      const request: HttpRequest = { method: 'GET', url: `/p?${q}`, headers: {} };
      const reference = new URL(`http://a.example/?${q}&`).searchParams;
      for (const name of new Set(reference.keys())) {
        const values = reference.getAll(name);
        const got = outcome(() => componentValue(request, `"@query-param";name="${formEncode(name)}"`));
        expect(got).toEqual(values.length === 1 ? { value: formEncode(values[0]!) } : { code: 'request_malformed' });
      }
    }),
  );
  expect(report.findings).toEqual([]);
});

it('fails only with coded errors on hostile messages', async () => {
  const component = fc.constantFrom(...DERIVED_COMPONENTS.filter((c) => c !== '@query-param'), '"@query-param";name="a"', 'x-a', '"x-a";bs', '"x-a";sf', '"x-a";key="k"', '"content-digest";sf', '"x-a";req', '"@path";req');
  const report = await fuzz(
    'signature-base-hostile',
    fc.property(
      fc.oneof(fc.string({ maxLength: 60, unit: 'binary' }), url),
      fc.string({ maxLength: 8 }),
      fc.dictionary(fc.constantFrom('host', 'x-a', 'content-digest'), fc.array(fc.string({ maxLength: 30, unit: 'binary' }), { maxLength: 3 }), { maxKeys: 3 }),
      fc.uniqueArray(component, { maxLength: 8 }),
      fc.integer({ min: -10, max: 1200 }),
      (u, method, h, cs, status) => {
        const params = serializeSignatureParams(cs, { created: 1 });
        const request: HttpRequest = { method, url: u, headers: h };
        outcome(() => signatureBase(request, cs, params));
        outcome(() => signatureBase({ status, headers: h }, cs, params, { request }));
      },
    ),
  );
  expect(report.findings).toEqual([]);
});
