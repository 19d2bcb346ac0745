// Fuzz target: the Signature-Input / Signature fast path against the structured-headers reference,
// and the signature-field parsers (only coded errors), over generated, mutated and random fields.
import fc from 'fast-check';
import { parseDictionary, serializeDictionary, Token, type Dictionary } from 'structured-headers';
import { parseDictionaryFast } from '../packages/core/src/rfc9421/fast-dictionary';
import { parseSignature, parseSignatureInput } from '../packages/core/src/rfc9421/index';
import { MUTATIONS, mutate, outcome, sfText } from '../test/property/support';
import { fuzz } from './harness';

const key = fc.stringMatching(/^[a-z*][a-z0-9_\-.*]{0,8}$/);
const bare = fc.oneof(
  fc.stringMatching(/^[\x20-\x7e]{0,20}$/),
  fc.integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 }),
  fc.double({ min: -1e11, max: 1e11, noNaN: true }).map((d) => Math.round(d * 1000) / 1000),
  fc.boolean(),
  fc.stringMatching(/^[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]{0,8}$/).map((t) => new Token(t)),
  fc.uint8Array({ maxLength: 80 }).map((b) => b.slice().buffer as ArrayBuffer),
);
const params = fc.uniqueArray(fc.tuple(key, bare), { maxLength: 5, selector: ([k]) => k }).map((e) => new Map(e));
const member = fc.oneof(fc.tuple(bare, params), fc.tuple(fc.array(fc.tuple(bare, params), { maxLength: 8 }), params));
const dictionary = fc.uniqueArray(fc.tuple(key, member), { minLength: 1, maxLength: 8, selector: ([k]) => k }).map((e) => new Map(e) as Dictionary);
const text = fc.oneof(
  sfText,
  fc.string({ maxLength: 200 }),
  dictionary.map((d) => serializeDictionary(d)),
  fc.tuple(dictionary, fc.array(fc.tuple(fc.constantFrom(...MUTATIONS), fc.nat(), fc.nat(7)), { minLength: 1, maxLength: 4 })).map(([d, ms]) => ms.reduce((t, [m, at, bit]) => mutate(t, m, at, bit), serializeDictionary(d))),
);

function reference(t: string): Dictionary | 'error' {
  try {
    return parseDictionary(t);
  } catch {
    return 'error';
  }
}

it('the fast path answers exactly as structured-headers, or hands over', async () => {
  const report = await fuzz(
    'fast-dictionary',
    fc.property(text, (t) => {
      const fast = parseDictionaryFast(t);
      if (fast !== undefined) expect(fast).toEqual(reference(t));
    }),
  );
  expect(report.findings).toEqual([]);
});

it('the signature-field parsers fail only with coded errors', async () => {
  const report = await fuzz(
    'signature-fields',
    fc.property(fc.array(text, { minLength: 1, maxLength: 3 }), (lines) => {
      outcome(() => parseSignatureInput(lines));
      outcome(() => parseSignature(lines));
    }),
  );
  expect(report.findings).toEqual([]);
});
