// The Signature-Input / Signature fast path must agree with the structured-headers parser on every
// input it accepts, and hand everything else to it. Differential test over generated fields, valid
// and mutated, with a fixed seed so a failure reproduces.
import { parseDictionary } from 'structured-headers';
import { parseDictionaryFast } from '../src/rfc9421/fast-dictionary';

function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

const PIECES = [
  'sig', 'sig2', '*x', 'a-b.c_d', '=', '(', ')', '"@method"', '"content-digest"', '"a\\"b"', '";"', ';', 'req', 'key=', '"k"',
  'created=', '1618884473', '-5', '-0', '007', '1.5', '1234567890123456', '?1', '?0', '?2', 'tok', 'nonce=', '"n"', ' ', '  ', '\t',
  ',', ', ', ':', ':AAEC:', ':AAE=:', ':AA==:', ':A:', ':!!:', '"é"', 'Sig', '', '"\u007f"', '()', ';=',
];

function generated(r: () => number): string {
  const n = 1 + Math.floor(r() * 25);
  let out = '';
  for (let i = 0; i < n; i++) out += PIECES[Math.floor(r() * PIECES.length)];
  return out;
}

function canonical(r: () => number): string {
  const members: string[] = [];
  const count = 1 + Math.floor(r() * 3);
  for (let m = 0; m < count; m++) {
    if (r() < 0.3) {
      members.push(`s${m}=:${Buffer.from(Array.from({ length: Math.floor(r() * 70) }, () => Math.floor(r() * 256))).toString('base64')}:`);
      continue;
    }
    const items = Array.from({ length: Math.floor(r() * 6) }, (_, i) => `"c${i}"${r() < 0.2 ? ';req' : ''}${r() < 0.2 ? ';key="k"' : ''}`);
    members.push(`sig${m}=(${items.join(' ')});created=${Math.floor(r() * 2e9)};nonce="${'n'.repeat(Math.floor(r() * 30))}";tag="oidc2-ict"${r() < 0.5 ? ';oidc2-sign-response' : ''}${r() < 0.3 ? ';x=?0' : ''}`);
  }
  return members.join(r() < 0.5 ? ', ' : ',');
}

function library(text: string): unknown {
  try {
    return parseDictionary(text);
  } catch {
    return 'error';
  }
}

describe('Signature-Input / Signature fast path', () => {
  it('parses the canonical fields a signer writes, exactly as structured-headers does', () => {
    const r = rng(42);
    for (let i = 0; i < 3000; i++) {
      const text = canonical(r);
      const fast = parseDictionaryFast(text);
      expect(fast).toBeDefined();
      expect(fast).toEqual(library(text));
    }
  });

  it('never accepts what structured-headers rejects, and agrees wherever it answers', () => {
    const r = rng(7);
    let answered = 0;
    for (let i = 0; i < 30000; i++) {
      const text = r() < 0.5 ? generated(r) : canonical(r).slice(0, Math.floor(r() * 200));
      const fast = parseDictionaryFast(text);
      if (fast === undefined) continue;
      answered++;
      expect([text, fast]).toEqual([text, library(text)]);
    }
    expect(answered).toBeGreaterThan(1000);
  });

  it('leaves decimals, tokens, escapes and non-canonical base64 to the generic parser', () => {
    for (const text of ['a=(1.5)', 'a=();x=1.5', 'a=();x=tok', 'a=("a\\"b")', 'a=:AAE:', 'a=?1', 'a=1', 'a=("x");y="é"']) {
      expect(parseDictionaryFast(text)).toBeUndefined();
    }
  });
});
