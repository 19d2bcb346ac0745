// Target: the Signature-Input / Signature fast path against structured-headers (whatever the fast
// path answers must equal the reference's answer; it may hand over by answering undefined), and the
// signature-field parsers, which fail only with coded errors. The input is one field value per line,
// read as latin1, as Node hands header values over.
const { isDeepStrictEqual } = require('node:util');
const { parseDictionary } = require('structured-headers');
const { core, coded, finding } = require('./support.cjs');

const { parseDictionaryFast } = core('rfc9421/fast-dictionary.js');
const { parseSignature, parseSignatureInput } = core('rfc9421/signature-fields.js');

function reference(text) {
  try {
    return parseDictionary(text);
  } catch {
    return 'error';
  }
}

exports.fuzz = (buf) => {
  const lines = buf.toString('latin1').split('\n');
  for (const line of lines) {
    const fast = parseDictionaryFast(line);
    if (fast !== undefined && !isDeepStrictEqual(fast, reference(line))) finding('the fast path and structured-headers disagree', line);
  }
  coded(() => parseSignatureInput(lines));
  coded(() => parseSignature(lines));
};
