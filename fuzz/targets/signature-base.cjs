// Target: the RFC 9421 signature-base builder. The input is a message: its method on the first
// line, its target URI on the second, then one `name:value` field line per line (latin1).
// - On every message, each component alone, of the request and of a response to it, builds or
//   fails with a coded error.
// - On the domain where http-message-signatures follows RFC 9421 (a WHATWG-canonical printable
//   http(s) URL with an RFC 3986 authority, no userinfo and no fragment, an upper-case method, plain
//   lower-case fields), the base equals that package's.
const { httpbis } = require('http-message-signatures');
const { core, coded, finding } = require('./support.cjs');

const { DERIVED_COMPONENTS } = core('rfc9421/components.js');
const { serializeSignatureParams } = core('rfc9421/signature-fields.js');
const { signatureBase } = core('rfc9421/signature-base.js');

const COMPONENTS = [
  ...DERIVED_COMPONENTS.filter((c) => c !== '@query-param'),
  '"@query-param";name="a"',
  'x-a',
  '"x-a";bs',
  '"x-a";sf',
  '"x-a";key="k"',
  '"content-digest";sf',
  '"x-a";req',
  '"@path";req',
];
const REFERENCE_COMPONENTS = ['@method', '@target-uri', '@authority', '@scheme', '@request-target', '@path', '@query'];
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const STATUSES = [200, 404, 0, -1, 1000];

/** The message the input spells: method, target URI, and field lines grouped by name. */
function message(buf) {
  const [method = '', url = '', ...lines] = buf.toString('latin1').split('\n');
  const headers = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    (headers[name] ??= []).push(colon < 0 ? '' : line.slice(colon + 1));
  }
  return { method, url, headers };
}

function canonicalUrl(url) {
  try {
    const parsed = new URL(url);
    // Userinfo and characters outside RFC 3986's authority are refused, and a fragment is dropped,
    // by choice (docs/http-message-signatures.md), where the reference keeps what WHATWG URL accepts.
    return (
      parsed.href === url &&
      /^https?:$/.test(parsed.protocol) &&
      /^[\x20-\x7e]*$/.test(url) &&
      !url.endsWith('?') &&
      !parsed.username &&
      !parsed.password &&
      !url.includes('#') &&
      /^[A-Za-z0-9\-._~!$&'()*+,;=%:[\]]+$/.test(parsed.host)
    );
  } catch {
    return false;
  }
}

/** True where http-message-signatures builds the base RFC 9421 describes. */
function referenceDomain({ method, url, headers }) {
  return (
    METHODS.has(method) &&
    canonicalUrl(url) &&
    Object.entries(headers).every(([name, values]) => /^[a-z][a-z0-9-]{0,30}$/.test(name) && name !== 'host' && values.length === 1 && /^[!-~]([ !-~]*[!-~])?$/.test(values[0]))
  );
}

exports.fuzz = (buf) => {
  const request = message(buf);
  const status = STATUSES[buf.length % STATUSES.length];
  for (const component of COMPONENTS) {
    const params = serializeSignatureParams([component], { created: 1 });
    coded(() => signatureBase(request, [component], params));
    coded(() => signatureBase({ status, headers: request.headers }, [component], params, { request }));
  }
  if (!referenceDomain(request)) return;
  const { method, url, headers } = request;
  const fields = [...REFERENCE_COMPONENTS, ...Object.keys(headers)];
  const plain = Object.fromEntries(Object.entries(headers).map(([name, [value]]) => [name, value]));
  const params = serializeSignatureParams(fields, {});
  const expected = `${httpbis.formatSignatureBase(httpbis.createSignatureBase({ fields }, { method, url, headers: plain }))}\n"@signature-params": ${params}`;
  const got = coded(() => signatureBase(request, fields, params));
  if (got.value !== expected) finding('the signature base and http-message-signatures disagree', { request, got, expected });
};
