// Target: `@query-param` against the WHATWG form parser (URLSearchParams), re-encoded as RFC 9421
// section 2.2.8 asks: every name the parser finds once gives its value; a repeated name is
// refused (request_malformed). The input is the raw query: UTF-8, or UTF-16 after a leading 0xff
// octet (which reaches lone surrogates); `#`, tab and line breaks, which never reach a query, are
// dropped.
const { core, coded, finding } = require('./support.cjs');

const { componentValue } = core('rfc9421/signature-base.js');

const FORM_SAFE = /[A-Za-z0-9*\-._]/;
function formEncode(decoded) {
  let out = '';
  for (const b of Buffer.from(decoded, 'utf8')) out += b < 128 && FORM_SAFE.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

exports.fuzz = (buf) => {
  const raw = buf[0] === 0xff ? buf.subarray(1).toString('utf16le') : buf.toString('utf8');
  const query = raw.replace(/[#\t\n\r]/g, '');
  const request = { method: 'GET', url: `/p?${query}`, headers: {} };
  const reference = new URL(`http://a.example/?${query}&`).searchParams;
  for (const name of new Set(reference.keys())) {
    const values = reference.getAll(name);
    const got = coded(() => componentValue(request, `"@query-param";name="${formEncode(name)}"`));
    const expected = values.length === 1 ? { value: formEncode(values[0]) } : { code: 'request_malformed' };
    if (got.value !== expected.value || got.code !== expected.code) finding('@query-param and the form parser disagree', { query, name, got, expected });
  }
};
