// Reading inputs (files, `@file` arguments, stdin) and writing outputs (key files with the right
// mode). Errors name the file and the reason, never what the file contains: it may hold a key.
import { closeSync, fchmodSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { UsageError } from './command.js';

/** Mode of files holding a private key or an API key. */
export const SECRET_FILE_MODE = 0o600;
/** Mode of files holding a public key. */
export const PUBLIC_FILE_MODE = 0o644;

function reason(error: unknown): string {
  return (error as NodeJS.ErrnoException | null)?.code ?? 'unreadable';
}

/** The bytes of `path`; `what` names it in errors (e.g. `--key file`). */
export function readInputFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`cannot read ${what} ${path}: ${reason(error)}`);
  }
}

/** Everything on stdin. */
export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** An argument given inline, as `@path` (a file) or as `@-` (stdin), curl-style. */
export async function inlineOrFile(value: string, what: string): Promise<Buffer> {
  if (value === '@-') return readStdin();
  if (value.startsWith('@')) return readInputFile(value.slice(1), what);
  return Buffer.from(value, 'utf8');
}

/**
 * JSON text parsed, or a {@link UsageError} naming `what`. The parser's own message is dropped:
 * it quotes the text around the fault, which may be part of a private key.
 */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new UsageError(`${what} is not valid JSON`);
  }
}

/** A JSON object read from `path`. */
export function readJsonObject(path: string, what: string): Record<string, unknown> {
  const value = parseJson(readInputFile(path, what).toString('utf8'), `${what} ${path}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`${what} ${path} is not a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * Writes `data` to a new file with `mode` (exactly, whatever the umask), or over an existing one
 * when `force` is set. An existing file gets `mode` before anything is written to it, so a secret
 * never sits in a file others can read.
 */
export function writeOutputFile(path: string, data: string, mode: number, force: boolean): void {
  let fd: number;
  try {
    fd = openSync(path, force ? 'w' : 'wx', mode);
  } catch (error) {
    if (reason(error) === 'EEXIST') throw new UsageError(`${path} exists: pass --force to overwrite it`);
    throw new UsageError(`cannot write ${path}: ${reason(error)}`);
  }
  try {
    fchmodSync(fd, mode);
    writeFileSync(fd, data);
  } finally {
    closeSync(fd);
  }
}
