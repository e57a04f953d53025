#!/usr/bin/env node
// First: tracing must start before the modules it instruments are loaded.
import './tracing-preload';
import { stopTracing } from '@openclaw/core/tracing';
import { main } from './main';

main(process.argv)
  .catch((error: unknown) => {
    process.stderr.write(`openclaw: ${(error as Error).message}\n`);
    process.exitCode = 1;
  })
  // Spans of a short command are still buffered when it ends: send them before exiting.
  .finally(() => stopTracing());
