import { nestingProblem } from './json-depth';

const nested = (levels: number, leaf: unknown = 1): unknown => {
  let value = leaf;
  for (let i = 0; i < levels; i++) value = i % 2 === 0 ? [value] : { a: value };
  return value;
};

describe('nestingProblem', () => {
  it('accepts values up to the limit and scalars', () => {
    expect(nestingProblem(1, 1)).toBeUndefined();
    expect(nestingProblem(null, 1)).toBeUndefined();
    expect(nestingProblem({ data: [[1]] }, 3)).toBeUndefined();
    expect(nestingProblem({ a: nested(62) }, 64)).toBeUndefined();
  });

  it('names the top-level field under which the value is too deep', () => {
    expect(nestingProblem({ action: 'x', data: [[[1]]] }, 3)).toEqual({
      field: 'data',
      message: 'nested deeper than 3 levels',
    });
    expect(nestingProblem([[[[1]]]], 3)).toEqual({ field: '0', message: 'nested deeper than 3 levels' });
    expect(nestingProblem([[1]], 1)).toEqual({ field: '0', message: 'nested deeper than 1 levels' });
  });

  it('checks a value nested 100 000 levels deep without overflowing the stack', () => {
    const text = `{"output":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(nestingProblem(JSON.parse(text), 64)).toEqual({ field: 'output', message: 'nested deeper than 64 levels' });
  });

  it('sees members named like object internals as data', () => {
    const value = JSON.parse('{"__proto__":{"constructor":{"a":[[1]]}}}');
    expect(nestingProblem(value, 4)).toEqual({ field: '__proto__', message: 'nested deeper than 4 levels' });
    expect(nestingProblem(value, 5)).toBeUndefined();
  });
});
