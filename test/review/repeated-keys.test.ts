// The repeated-key check behind request_malformed for Signature-Input, Signature and Content-Digest:
// it must find a key named twice where RFC 9651 would keep only the last, and nothing else.
import { parseDictionary } from 'structured-headers';
import { repeatedKey } from '../../packages/core/src/lib/structured-keys';

const cases: Array<[string, string | undefined]> = [
  ['sig=("@method" "@path");created=1;nonce="a";tag="t"', undefined],
  // Items of an inner list each have their own parameters, and so has the list.
  ['sig=("@query-param";name="a" "@query-param";name="b");name="c"', undefined],
  // Strings may hold anything that looks like a key, a separator or a quote.
  ['sig=("@method");nonce="x;nonce=1, sig=(";aud="https://a.example/p,q;r\\"s"', undefined],
  ['sha-256=:AAAA:, sha-512=:BBBB:;x=1, md5=:CCCC:;x=2', undefined],
  ['sig=("@method");created=1;created=1', 'created'],
  ['sig=("@method");created=1, sig=("@path");created=1', 'sig'],
  ['sha-256=:AAAA:,sha-256=:BBBB:', 'sha-256'],
  ['sig=("@query-param";name="a";name="b")', 'name'],
  ['sig=:AAAA:;x;x', 'x'],
];

describe('repeatedKey', () => {
  it.each(cases)('%s -> %s', (text, repeated) => {
    expect(() => parseDictionary(text)).not.toThrow();
    expect(repeatedKey(text)).toBe(repeated);
  });
});
