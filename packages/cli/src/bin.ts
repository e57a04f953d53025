#!/usr/bin/env node
import { main } from './main';

main(process.argv).catch((error: unknown) => {
  process.stderr.write(`openclaw: ${(error as Error).message}\n`);
  process.exitCode = 1;
});
