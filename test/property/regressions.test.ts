// Each failure the property and fuzz runs found, pinned by the smallest input that showed it.
import { parseRequestSession, serializeSession } from '../../packages/core/src/e2ee/fields';
import { componentValue } from '../../packages/core/src/rfc9421/index';
import { outcome } from './support';

describe('regressions found by the property suites', () => {
  it('serializeSession refuses a token the sf-token grammar cannot carry with a coded TypeError', () => {
    // A compact JWE whose first character cannot start an sf-token (RFC 9651 section 3.3.4) passed
    // the shape check and reached the Token constructor of structured-headers, which threw an
    // uncoded TypeError.
    for (const token of ['0a.b.c.d.e', '-a.b.c.d.e', '_a..c.d.e']) {
      expect(outcome(() => serializeSession(token))).toEqual({ code: 'ERR_INVALID_ARG_VALUE' });
      expect(outcome(() => parseRequestSession([token]))).toEqual({ code: 'session_invalid' });
    }
    expect(parseRequestSession([serializeSession('eyJ.a.b.c.d')])).toEqual({ token: 'eyJ.a.b.c.d' });
  });

  it('@query-param reads a lone high surrogate as one U+FFFD without swallowing the next character', () => {
    // `\ud800%2B` was read as the "pair" `\ud800%`, leaving `2B` as text: the name became
    // `%EF%BF%BD%252B` where the form-urlencoded parser (URLSearchParams) gives `%EF%BF%BD%2B`.
    const request = { method: 'GET', url: '/p?\ud800%2B=1&\ud800x=2&\ud83d\ude00=3', headers: {} };
    expect(componentValue(request, '"@query-param";name="%EF%BF%BD%2B"')).toBe('1');
    expect(componentValue(request, '"@query-param";name="%EF%BF%BDx"')).toBe('2');
    expect(componentValue(request, '"@query-param";name="%F0%9F%98%80"')).toBe('3');
  });
});
