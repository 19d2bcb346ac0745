// Each failure the property and fuzz runs found, pinned by the smallest input that showed it.
import { parseRequestSession, serializeSession } from '../../packages/core/src/e2ee/fields';
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
});
