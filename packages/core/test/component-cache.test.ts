// Component identifiers given as strings are parsed once and shared: the shared objects must be
// immutable, failures must not be cached, and the cache must stay bounded without changing results.
import { toComponent } from '../src/rfc9421/components';

describe('toComponent cache', () => {
  test('a repeated identifier yields the same frozen object', () => {
    const a = toComponent('"@method";req');
    const b = toComponent('"@method";req');
    expect(b).toBe(a);
    expect(a).toEqual({ name: '@method', params: { req: true }, id: '"@method";req' });
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.params)).toBe(true);
    expect(() => {
      (a.params as { req?: boolean }).req = false;
    }).toThrow(TypeError);
    expect(toComponent('"@method";req').params.req).toBe(true);
  });

  test('a malformed identifier fails every time', () => {
    for (let i = 0; i < 2; i++) expect(() => toComponent('"@method')).toThrow(TypeError);
  });

  test('past the bound identifiers are still parsed correctly', () => {
    for (let i = 0; i < 300; i++) {
      const c = toComponent(`x-field-${i};bs`);
      expect(c).toEqual({ name: `x-field-${i}`, params: { bs: true }, id: `"x-field-${i}";bs` });
    }
  });
});
