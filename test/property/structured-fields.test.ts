// Properties of every Structured Field a caller can send (Signature-Input, Signature,
// Content-Digest, Oidc2-Key-Share, Oidc2-Session) and the one the service writes (Accept-Signature):
// parsers fail only with coded errors, agree with the `structured-headers` reference, and round-trip
// what this project serializes.
import fc from 'fast-check';
import { parseDictionary, serializeDictionary, Token as SfToken, type Dictionary, type Item, type InnerList, type Parameters } from 'structured-headers';
import { parseDictionaryFast } from '../../packages/core/src/rfc9421/fast-dictionary';
import { parseSignature, parseSignatureInput, serializeSignatureParams, DERIVED_COMPONENTS } from '../../packages/core/src/rfc9421/index';
import { createContentDigest, verifyContentDigest } from '../../packages/core/src/content-digest';
import {
  parseRequestKeyShare,
  parseResponseKeyShare,
  parseRequestSession,
  parseResponseSession,
  serializeRequestKeyShare,
  serializeResponseKeyShare,
  serializeSession,
  SUITE_LENGTHS,
  type SuiteName,
} from '../../packages/core/src/e2ee/fields';
import { MUTATIONS, mutate, outcome, outcomeAsync, runs, sfText } from './support';

function reference(text: string): Dictionary | 'error' {
  try {
    return parseDictionary(text);
  } catch {
    return 'error';
  }
}

// A generator of Dictionaries in the shape of the signature fields, serialized by the reference.
const key = fc.stringMatching(/^[a-z*][a-z0-9_\-.*]{0,8}$/);
const sfString = fc.stringMatching(/^[\x20-\x7e]{0,20}$/);
const bareItem = fc.oneof(
  sfString,
  fc.integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 }),
  fc.boolean(),
  fc.stringMatching(/^[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]{0,8}$/).map((t) => new SfToken(t)),
  fc.uint8Array({ maxLength: 40 }).map((b) => b.slice().buffer as ArrayBuffer),
);
const params: fc.Arbitrary<Parameters> = fc.uniqueArray(fc.tuple(key, bareItem), { maxLength: 4, selector: ([k]) => k }).map((e) => new Map(e));
const item: fc.Arbitrary<Item> = fc.tuple(bareItem, params);
const innerList: fc.Arbitrary<InnerList> = fc.tuple(fc.array(fc.tuple(sfString, params), { maxLength: 6 }), params);
const dictionary: fc.Arbitrary<Dictionary> = fc
  .uniqueArray(fc.tuple(key, fc.oneof(item, innerList)), { minLength: 1, maxLength: 5, selector: ([k]) => k })
  .map((entries) => new Map(entries));

describe('the Signature-Input / Signature fast path agrees with structured-headers', () => {
  it('on every Dictionary the reference serializes', () => {
    fc.assert(
      fc.property(dictionary, (d) => {
        const text = serializeDictionary(d);
        const fast = parseDictionaryFast(text);
        if (fast !== undefined) expect(fast).toEqual(reference(text));
      }),
      runs(1000),
    );
  });

  it('on arbitrary text and on mutations of valid fields: it either hands over (undefined) or answers exactly as the reference', () => {
    const valid = dictionary.map((d) => serializeDictionary(d));
    const texts = fc.oneof(
      sfText,
      fc.tuple(valid, fc.constantFrom(...MUTATIONS), fc.nat(), fc.nat(7)).map(([t, m, at, bit]) => mutate(t, m, at, bit)),
      fc.string({ maxLength: 60 }),
    );
    fc.assert(
      fc.property(texts, (text) => {
        const fast = parseDictionaryFast(text);
        if (fast !== undefined) expect(fast).toEqual(reference(text));
      }),
      runs(2000),
    );
  });
});

describe('Signature-Input and Signature parsers', () => {
  const lines = fc.array(fc.oneof(sfText, fc.string({ maxLength: 40 })), { minLength: 1, maxLength: 3 });

  it('fail only with coded errors on anything', () => {
    fc.assert(
      fc.property(lines, (l) => {
        outcome(() => parseSignatureInput(l));
        outcome(() => parseSignature(l));
      }),
      runs(1500),
    );
  });

  it('accept a Dictionary exactly when the reference does, for the member shapes they define', () => {
    fc.assert(
      fc.property(dictionary, (d) => {
        const text = serializeDictionary(d);
        const result = outcome(() => parseSignature([text]));
        const allBytes = [...d.values()].every((m) => m[0] instanceof ArrayBuffer);
        expect('value' in result).toBe(allBytes && d.size <= 8);
        if ('value' in result) {
          for (const [label, member] of d) expect(Buffer.from(result.value.get(label)!)).toEqual(Buffer.from(member[0] as ArrayBuffer));
        }
      }),
      runs(800),
    );
  });

  const fieldName = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/);
  const component = fc.oneof(
    fc.constantFrom(...DERIVED_COMPONENTS.filter((c) => c !== '@query-param' && c !== '@status')),
    fc.stringMatching(/^[A-Za-z0-9*._~-]{1,8}$/).map((n) => `"@query-param";name="${n}"`),
    fieldName,
    fieldName.map((n) => `${n};bs`),
    fieldName.map((n) => `"${n}";key="k"`),
  );
  const signatureParams = fc.record(
    {
      created: fc.integer({ min: 0, max: 4_000_000_000 }),
      expires: fc.integer({ min: 0, max: 4_000_000_000 }),
      nonce: fc.stringMatching(/^[\x20-\x7e]{0,30}$/),
      tag: fc.constantFrom('oidc2-ict', 'wimse-workload-to-workload', 'x'),
      'oidc2-aud': fc.webUrl(),
      'oidc2-sign-response': fc.boolean(),
    },
    { requiredKeys: [] },
  );

  it('round-trip what serializeSignatureParams writes: same components, parameters and @signature-params', () => {
    fc.assert(
      fc.property(fc.uniqueArray(component, { maxLength: 10, selector: (c) => c.replace(/"/g, '') }), signatureParams, fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), (components, p, label) => {
        const text = serializeSignatureParams(components, p);
        const entry = parseSignatureInput([`${label}=${text}`]).get(label)!;
        expect(entry.signatureParams).toBe(text);
        expect(entry.params).toEqual(p);
        expect(serializeSignatureParams(entry.components, entry.params)).toBe(text);
      }),
      runs(800),
    );
  });

  it('never read a mutated Signature-Input member as the same signature', () => {
    const base = '("@method" "@path" "@query" "identity-certification-token" "content-digest");created=1618884473;expires=1618884773;nonce="bm9uY2Utbm9uY2Utbm9uY2U";tag="oidc2-ict";oidc2-aud="https://api.example.com/orders"';
    fc.assert(
      fc.property(fc.constantFrom(...MUTATIONS), fc.nat(), fc.nat(7), (m, at, bit) => {
        const mutated = mutate(base, m, at, bit);
        if (mutated === base) return; // re-casing a character without case
        const result = outcome(() => parseSignatureInput([`sig=${mutated}`]));
        // A mutation either breaks the field or changes what the signature covers: the signed
        // @signature-params line differs, so the signature no longer verifies. Only whitespace the
        // Structured Field grammar ignores re-serializes to the same line (RFC 9421 section 2.3).
        if ('value' in result && result.value.get('sig')?.signatureParams === base) expect(mutated.replace(/ /g, '')).toBe(base.replace(/ /g, ''));
      }),
      runs(3000),
    );
  });
});

describe('Content-Digest', () => {
  it('round-trips: what createContentDigest writes verifies, for both algorithms, and a changed body does not', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.constantFrom('sha-256' as const, 'sha-512' as const), fc.nat(), async (body, alg, at) => {
        const field = await createContentDigest(body, alg);
        await expect(verifyContentDigest([field], body)).resolves.toBeUndefined();
        const changed = body.length === 0 ? Uint8Array.of(0) : body.map((b, i) => (i === at % body.length ? b ^ 1 : b));
        expect(await outcomeAsync(() => verifyContentDigest([field], changed))).toEqual({ code: 'digest_mismatch' });
      }),
      runs(300),
    );
  });

  it('never accepts a mutated field for the same body, and fails only with coded errors', async () => {
    const body = new TextEncoder().encode('{"hello": "world"}');
    const field = await createContentDigest(body);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...MUTATIONS), fc.nat(), fc.nat(7), async (m, at, bit) => {
        const mutated = mutate(field, m, at, bit);
        const result = await outcomeAsync(() => verifyContentDigest([mutated], body));
        // Re-spacing around a member and a pad-bit flip in the base64 (RFC 9651 section 4.2.7 tells
        // parsers to accept those) leave the same digest; any other accepted text would be a bug.
        if ('value' in result) expect(Buffer.from(parseDictionary(mutated).get('sha-256')![0] as ArrayBuffer)).toEqual(Buffer.from(parseDictionary(field).get('sha-256')![0] as ArrayBuffer));
      }),
      runs(1500),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(sfText, { minLength: 1, maxLength: 2 }), async (lines) => {
        await outcomeAsync(() => verifyContentDigest(lines, body));
      }),
      runs(1500),
    );
  });
});

const suite = fc.constantFrom<SuiteName>('x25519', 'p256', 'xwing');

describe('Oidc2-Key-Share', () => {
  const shares = fc
    .uniqueArray(suite, { minLength: 1, maxLength: 3 })
    .chain((suites) => fc.tuple(...suites.map((s) => fc.uint8Array({ minLength: SUITE_LENGTHS[s].share, maxLength: SUITE_LENGTHS[s].share }).map((key) => ({ suite: s, key })))));

  it('round-trips request and response shares, and KS is the canonical form sent', () => {
    fc.assert(
      fc.property(shares, (s) => {
        const field = serializeRequestKeyShare(s);
        const parsed = parseRequestKeyShare([field]);
        expect(parsed.shares).toEqual(s);
        expect(parsed.canonical).toBe(field);
        expect(serializeDictionary(parseDictionary(field))).toBe(field);
      }),
      runs(300),
    );
    fc.assert(
      fc.property(suite.chain((s) => fc.uint8Array({ minLength: SUITE_LENGTHS[s].enc, maxLength: SUITE_LENGTHS[s].enc }).map((key) => ({ suite: s, key }))), (share) => {
        expect(parseResponseKeyShare([serializeResponseKeyShare(share)])).toEqual(share);
      }),
      runs(200),
    );
  });

  it('fails only with e2ee_key_share_invalid on anything else, mutations included', () => {
    const texts = fc.oneof(
      sfText,
      fc.string({ maxLength: 80 }),
      fc.tuple(shares.map((s) => serializeRequestKeyShare(s)), fc.constantFrom(...MUTATIONS), fc.nat(), fc.nat(7)).map(([t, m, at, bit]) => mutate(t, m, at, bit)),
    );
    fc.assert(
      fc.property(texts, (text) => {
        for (const parse of [parseRequestKeyShare, parseResponseKeyShare]) {
          const result = outcome(() => parse([text]));
          if ('code' in result) expect(result.code).toBe('e2ee_key_share_invalid');
        }
      }),
      runs(2000),
    );
  });

  it('refuses a suite named twice, even where the Dictionary would keep only the last', () => {
    fc.assert(
      fc.property(suite, fc.uint8Array({ minLength: 32, maxLength: 32 }), (s, k) => {
        const one = serializeRequestKeyShare([{ suite: 'x25519', key: k }]);
        const text = s === 'x25519' ? `${one}, ${one}` : `${one}, ${one.replace('x25519', 'x25519')}`;
        expect(outcome(() => parseRequestKeyShare([text]))).toEqual({ code: 'e2ee_key_share_invalid' });
      }),
      runs(50),
    );
  });
});

describe('Oidc2-Session', () => {
  const b64u = fc.stringMatching(/^[A-Za-z0-9_-]{1,60}$/);
  const jwe = fc.tuple(b64u.map((s) => `e${s}`), fc.stringMatching(/^[A-Za-z0-9_-]{0,10}$/), b64u, b64u, b64u).map((p) => p.join('.'));

  it('round-trips request and response fields', () => {
    fc.assert(
      fc.property(jwe, fc.nat({ max: 2 ** 40 }), fc.nat({ max: 2 ** 40 }), (token, exp, rekey) => {
        expect(parseRequestSession([serializeSession(token)])).toEqual({ token });
        expect(parseResponseSession([serializeSession(token, { exp, rekey })])).toEqual({ token, exp, rekey });
      }),
      runs(500),
    );
  });

  it('fails only with session_invalid on anything else, and a mutation never yields the same token', () => {
    const texts = fc.oneof(
      sfText,
      fc.string({ maxLength: 80 }),
      fc.tuple(jwe, fc.constantFrom(...MUTATIONS), fc.nat(), fc.nat(7)).map(([t, m, at, bit]) => [t, mutate(serializeSession(t), m, at, bit)] as const),
    );
    fc.assert(
      fc.property(texts, (input) => {
        const [original, text] = typeof input === 'string' ? [undefined, input] : input;
        const result = outcome(() => parseRequestSession([text]));
        if ('code' in result) expect(result.code).toBe('session_invalid');
        else if (original !== undefined && text.trim() !== original) expect(result.value.token).not.toBe(original);
      }),
      runs(2000),
    );
  });
});
