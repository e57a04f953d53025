import type { Setting } from '@openclaw/core';
import type { Command } from 'commander';

/** The settings of a table that have a command-line flag, in the table's order. */
function flagged(table: Readonly<Record<string, Setting<unknown>>>): (Setting<unknown> & { flag: string })[] {
  return Object.values(table).filter((s): s is Setting<unknown> & { flag: string } => s.flag !== undefined);
}

/** How a setting's help names its default: the text, or what a generated one is. */
function defaultText(setting: Setting<unknown>): string {
  if (typeof setting.default === 'function') return 'generated';
  return setting.default === '' ? 'none' : setting.default;
}

/**
 * Adds an option for every setting of `table` that has a flag, its help generated from the table (what
 * it means, its environment variable and its default), so `--help` cannot drift from what is parsed.
 * @returns a function that picks the flags' values out of commander's options, keyed by flag.
 * @example
 * const flagsOf = addSettingOptions(command, GATEWAY_SETTINGS);
 * command.action((options) => runGateway({ flags: flagsOf(options), env: process.env }));
 */
export function addSettingOptions(
  command: Command,
  table: Readonly<Record<string, Setting<unknown>>>,
): (options: Record<string, unknown>) => Record<string, string | undefined> {
  const settings = flagged(table);
  for (const s of settings) {
    command.option(`--${s.flag} <value>`, `${s.doc} [${s.env}, default ${defaultText(s)}]`);
  }
  return (options) => {
    const flags: Record<string, string | undefined> = {};
    for (const s of settings) {
      const value = options[camel(s.flag)];
      flags[s.flag] = typeof value === 'string' ? value : undefined;
    }
    return flags;
  };
}

/** `replica-id` → `replicaId`, as commander names options. */
function camel(flag: string): string {
  return flag.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
}
