// The fast path of Signature-Input and Signature parsing must answer only where the generic path
// (the reference) accepts, and then exactly as it does. Differential test over generated fields,
// canonical and mutated, with a fixed seed so a failure reproduces.
import { fastSignature, fastSignatureInput } from '../src/rfc9421/fast-signature-fields';
import { parseSignature, parseSignatureInput, parseSignatureInputText, parseSignatureText } from '../src/rfc9421/signature-fields';
import { isOidc2Error } from '../src/errors';

function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

const COMPONENTS = ['"@method"', '"@path"', '"@query"', '"@authority"', '"identity-certification-token"', '"content-digest"', '"content-type"', '"@query-param";name="a"', '"x-a";key="k"', '"dpop";req', '"@status"', '"x-b";sf', '"x-c";bs'];
const PARAMS = ['created=1618884473', 'expires=1618884533', 'created=0', 'nonce="n0nce"', 'tag="oidc2-ict"', 'oidc2-aud="https://api.example.com/"', 'oidc2-sign-response', 'x=?0', 'y=-5', 'keyid="k"', 'alg="ed25519"', 'z=12'];

function member(r: () => number, label: string): string {
  const n = Math.floor(r() * 5);
  const picked = new Set<string>();
  for (let i = 0; i < n; i++) picked.add(COMPONENTS[Math.floor(r() * COMPONENTS.length)]!);
  const params = new Set<string>();
  for (let i = 0; i < Math.floor(r() * 6); i++) params.add(PARAMS[Math.floor(r() * PARAMS.length)]!);
  const keys = new Set([...params].map((p) => p.split('=')[0]));
  const unique = [...params].filter((p) => keys.delete(p.split('=')[0]!));
  return `${label}=(${[...picked].join(' ')})${unique.map((p) => `;${p}`).join('')}`;
}

function canonical(r: () => number): string {
  const count = 1 + Math.floor(r() * 3);
  return Array.from({ length: count }, (_, i) => member(r, i === 0 ? 'sig' : `sig${i + 1}`)).join(r() < 0.5 ? ', ' : ',');
}

const EDITS = [' ', ';', ';x', '=', '"', '\\', '(', ')', ',', '-0', '007', '1.5', '?1', '?0', 'tok', ';created=1', ';created=-1', ';nonce=1', ';tag=?0', 'sig=()', '\t', 'é', '\u007f', '1234567890123456'];

function mutated(r: () => number, text: string): string {
  const at = Math.floor(r() * (text.length + 1));
  const edit = EDITS[Math.floor(r() * EDITS.length)]!;
  const op = r();
  if (op < 0.4) return text.slice(0, at) + edit + text.slice(at);
  if (op < 0.7) return text.slice(0, at) + edit + text.slice(at + 1);
  return text.slice(0, at) + text.slice(at + 1 + Math.floor(r() * 3));
}

function reference<T>(f: () => T): T | string {
  try {
    return f();
  } catch (error) {
    return isOidc2Error(error) ? error.code : 'error';
  }
}

describe('Signature-Input fast path', () => {
  it('answers the canonical fields a signer writes once their shape is known, exactly as the generic path', () => {
    const r = rng(42);
    let answered = 0;
    for (let i = 0; i < 3000; i++) {
      const text = canonical(r);
      const expected = reference(() => parseSignatureInputText(text, 8, 64)); // also learns the shapes
      const fast = fastSignatureInput(text, 8, 64);
      if (typeof expected === 'string') {
        expect([text, fast]).toEqual([text, undefined]);
        continue;
      }
      expect([text, fast]).toEqual([text, expected]);
      answered++;
    }
    expect(answered).toBeGreaterThan(2000);
  });

  it('never answers where the generic path refuses, and agrees wherever it answers', () => {
    const r = rng(7);
    let answered = 0;
    for (let i = 0; i < 30000; i++) {
      let text = canonical(r);
      parseSignatureInput([text]); // the shapes are known: mutations reach the parameter and member rules
      for (let m = Math.floor(r() * 3); m >= 0; m--) text = mutated(r, text);
      const fast = fastSignatureInput(text, 8, 64);
      if (fast === undefined) continue;
      answered++;
      expect([text, fast]).toEqual([text, reference(() => parseSignatureInputText(text, 8, 64))]);
    }
    expect(answered).toBeGreaterThan(2000);
  });

  it('leaves non-canonical text, repeated keys and refused values to the generic path', () => {
    const list = '("@method" "@path")';
    parseSignatureInput([`sig=${list}`]);
    expect(fastSignatureInput(`sig=${list};created=1`, 8, 64)).toBeDefined();
    for (const text of [
      `sig=${list};created=01`, // leading zero
      `sig=${list};x=-0`,
      `sig=${list};x=?1`, // a true flag is written bare
      `sig=${list}; created=1`,
      `sig=${list};created=1;created=1`,
      `sig=${list}, sig=${list}`,
      `sig=${list};created=-1`,
      `sig=${list};nonce=1`,
      `sig=${list};tag=?0`,
      `sig=${list};x=1.5`,
      `sig=${list};x=tok`,
      `sig=${list};x="a\\"b"`,
      'sig=("@method"  "@path")',
      'sig=( "@method" "@path")',
      `sig=${list},`,
      `sig=${list};x=1234567890123456`,
    ]) {
      expect([text, fastSignatureInput(text, 8, 64)]).toEqual([text, undefined]);
    }
    // The bounds: more members or components than allowed go to the generic path, which refuses them.
    expect(fastSignatureInput(`a=${list}, b=${list}`, 1, 64)).toBeUndefined();
    expect(fastSignatureInput(`a=${list}`, 8, 1)).toBeUndefined();
    expect(reference(() => parseSignatureInput([`a=${list}, b=${list}`], { maxMembers: 1 }))).toBe('request_malformed');
    expect(reference(() => parseSignatureInput([`a=${list}`], { maxComponents: 1 }))).toBe('request_malformed');
  });

  it('shares one frozen component list per shape', () => {
    const text = 'sig=("@method" "@query" "@path");created=1';
    parseSignatureInput([text]);
    const a = parseSignatureInput([text]).get('sig')!;
    const b = parseSignatureInput([text.replace('created=1', 'created=2')]).get('sig')!;
    expect(b.components).toBe(a.components);
    expect(Object.isFrozen(a.components) && Object.isFrozen(a.components[0]) && Object.isFrozen(a.components[0]!.params)).toBe(true);
    expect(b.signatureParams).toBe('("@method" "@query" "@path");created=2');
  });

  it('stays bounded: many shapes still parse correctly', () => {
    for (let i = 0; i < 400; i++) {
      const text = `sig=("x-${i}" "@method");created=${i}`;
      expect(parseSignatureInput([text]).get('sig')!.components.map((c) => c.name)).toEqual([`x-${i}`, '@method']);
      expect(parseSignatureInput([text])).toEqual(parseSignatureInputText(text, 8, 64));
    }
  });
});

describe('Signature fast path', () => {
  it('agrees with the generic path on generated and mutated fields', () => {
    const r = rng(3);
    let answered = 0;
    for (let i = 0; i < 10000; i++) {
      const members = Array.from({ length: 1 + Math.floor(r() * 3) }, (_, m) => `s${m}=:${Buffer.from(Array.from({ length: Math.floor(r() * 70) }, () => Math.floor(r() * 256))).toString('base64')}:`);
      let text = members.join(r() < 0.5 ? ', ' : ',');
      if (r() < 0.6) text = mutated(r, text.replace(/s1=/, r() < 0.2 ? 's0=' : 's1='));
      const fast = fastSignature(text, 8);
      const expected = reference(() => parseSignatureText(text, 8));
      if (fast === undefined) continue;
      answered++;
      expect([text, fast]).toEqual([text, expected]);
      expect(parseSignature([text])).toEqual(expected);
    }
    expect(answered).toBeGreaterThan(3500);
  });

  it('leaves repeated labels, parameters and non-canonical base64 to the generic path', () => {
    for (const text of ['a=:AAE=:, a=:AAE=:', 'a=:AAE=:;x', 'a=:AAE:', 'a=:AA==:,', 'a=(), b=:AA==:', 'a=:AA==: b']) {
      expect([text, fastSignature(text, 8)]).toEqual([text, undefined]);
    }
    expect(reference(() => parseSignature(['a=:AAE=:, a=:AAE=:']))).toBe('request_malformed');
  });
});
