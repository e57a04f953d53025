import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { renderJsonSchemas } from './scripts/json-schema';

const schemaDir = join(__dirname, '..', 'schema');

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [relative(schemaDir, path)];
  });
}

describe('checked-in JSON Schema', () => {
  const rendered = renderJsonSchemas();

  it('has exactly the files the zod schemas render (run `npm run schema` after changing them)', () => {
    expect(listFiles(schemaDir).sort()).toEqual([...rendered.keys()].sort());
  });

  it.each([...rendered.entries()])('%s matches the zod schema', (file, text) => {
    expect(readFileSync(join(schemaDir, file), 'utf8')).toBe(text);
  });
});
