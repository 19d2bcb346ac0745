// Node's built-in modules, reached through process.getBuiltinModule so that bundlers and browsers
// never see a Node import: undefined wherever the runtime has no such module.

/** The built-in module `id` (e.g. `node:crypto`), or undefined outside Node. */
export function nodeBuiltin<T>(id: string): T | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    return proc?.getBuiltinModule?.(id) as T | undefined;
  } catch {
    return undefined;
  }
}
