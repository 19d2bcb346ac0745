// Oidc2-Session in a request is read without the general RFC 9651 parser when it is a bare compact
// JWE (fields.ts). That reading must agree with the parser's on every input: here each variant is
// also parsed with structured-headers and the profile's rule applied to its result (a Token, no
// parameters, of compact-JWE shape), and the two verdicts compared.
import { Token, parseItem } from 'structured-headers';
import { parseRequestSession, parseResponseSession } from '../../src/e2ee/fields';
import { syncCodeOf } from '../../../../test/support/error-code';

const JWE_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const JWE = 'eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXYxMjM0NTY3ODkw.Y2lwaGVydGV4dA.dGFnMTIzNDU2Nzg5MDEy';

/** The profile's verdict on a request field, through the general parser. */
function byParser(text: string): string {
  try {
    const [value, params] = parseItem(text);
    if (!(value instanceof Token) || !JWE_SHAPE.test(value.toString()) || params.size !== 0) return 'session_invalid';
    return value.toString();
  } catch {
    return 'session_invalid';
  }
}

function byFields(text: string): string {
  try {
    return parseRequestSession([text]).token;
  } catch (error) {
    return String((error as { code?: string }).code);
  }
}

describe('Oidc2-Session: the bare-token reading agrees with the RFC 9651 parser', () => {
  const variants = [
    JWE,
    ` ${JWE}`,
    `${JWE}  `,
    `\t${JWE}`,
    `${JWE}\t`,
    `1${JWE.slice(1)}`,
    `*${JWE.slice(1)}`,
    `_${JWE.slice(1)}`,
    `${JWE};a`,
    `${JWE} ;a=1`,
    `${JWE}:x`,
    `${JWE}/x`,
    `${JWE}.x`,
    `${JWE.replace('..', '.x.')}`,
    `${JWE.replace('..', '...')}`,
    `${JWE}, ${JWE}`,
    `"${JWE}"`,
    `:${Buffer.from(JWE).toString('base64')}:`,
    `${JWE.slice(0, 10)} ${JWE.slice(10)}`,
    `${JWE}=`,
    'A.B.C.D.E',
    'a..b.c.d',
    'a..b.c.',
  ];

  it.each(variants.map((v) => [JSON.stringify(v), v]))('%s', (_name, text) => {
    expect(byFields(text)).toBe(byParser(text));
  });

  it('a response field is never read as bare: it needs exp and rekey', () => {
    expect(syncCodeOf(() => parseResponseSession([JWE]))).toBe('session_invalid');
    expect(syncCodeOf(() => parseResponseSession([` ${JWE} `]))).toBe('session_invalid');
    expect(parseResponseSession([`${JWE};exp=3;rekey=2`])).toEqual({ token: JWE, exp: 3, rekey: 2 });
  });
});
