import { GATEWAY_SETTINGS, WORKER_SETTINGS } from '@openclaw/core';
import { Command } from 'commander';
import { addSettingOptions } from './setting-options';

/** Help as a terminal wide enough not to wrap. */
function helpOf(command: Command): string {
  command.configureHelp({ helpWidth: 10_000 });
  return command.helpInformation();
}

describe('setting options', () => {
  it.each([
    ['gateway start', GATEWAY_SETTINGS],
    ['worker start', WORKER_SETTINGS],
  ] as const)('gives %s an option for every flagged setting, with its variable and its default', (_name, table) => {
    const command = new Command('start');
    addSettingOptions(command, table);
    const help = helpOf(command);
    for (const setting of Object.values(table)) {
      if (setting.flag === undefined) continue;
      const line = help.split('\n').find((l) => l.trimStart().startsWith(`--${setting.flag} `));
      expect(line).toBeDefined();
      expect(line).toContain(setting.doc);
      expect(line).toContain(`[${setting.env}, default `);
      if (typeof setting.default === 'string' && setting.default !== '') {
        expect(line).toContain(`default ${setting.default}]`);
      }
    }
  });

  it('says what authentication really defaults to, and names every mode', () => {
    const command = new Command('start');
    addSettingOptions(command, GATEWAY_SETTINGS);
    const auth = helpOf(command)
      .split('\n')
      .find((l) => l.trimStart().startsWith('--auth '));
    expect(auth).toContain('[OPENCLAW_AUTH, default apikey]');
    for (const mode of ['"none"', '"apikey"', '"jwt"']) expect(auth).toContain(mode);
  });

  it('hands the given flags to the settings by flag name, and leaves the others unset', async () => {
    const command = new Command('start').exitOverride();
    const flagsOf = addSettingOptions(command, GATEWAY_SETTINGS);
    let flags: Record<string, string | undefined> = {};
    command.action((options: Record<string, unknown>) => {
      flags = flagsOf(options);
    });
    await command.parseAsync(['--replica-id', 'gw-7', '--auth', 'none'], { from: 'user' });
    expect(flags).toEqual({
      port: undefined,
      host: undefined,
      redis: undefined,
      'replica-id': 'gw-7',
      auth: 'none',
      'api-keys': undefined,
    });
  });
});
