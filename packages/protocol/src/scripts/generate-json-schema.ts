import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { renderJsonSchemas } from './json-schema';

/** Writes `schema/**.json` in the protocol package from the zod schemas. Run with `npm run schema`. */
const out = join(__dirname, '..', '..', 'schema');
rmSync(out, { recursive: true, force: true });
for (const [file, text] of renderJsonSchemas()) {
  const path = join(out, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}
process.stdout.write(`wrote JSON Schema files to ${out}\n`);
