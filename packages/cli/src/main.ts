import { Command } from 'commander';
import { addAgentCommands } from './commands/agent-commands';
import { addApiKeyCommands } from './commands/apikey-commands';
import { addApprovalCommands } from './commands/approval-commands';
import { addAuditCommands } from './commands/audit-commands';
import { addGatewayCommands } from './commands/gateway-commands';
import { addGovernanceCommands } from './commands/governance-commands';
import { addPolicyCommands } from './commands/policy-commands';
import { addStateCommands } from './commands/state-commands';
import { addTaskCommands } from './commands/task-commands';
import { addUpCommand } from './commands/up-command';
import { addWorkerCommands } from './commands/worker-commands';

/** This package's version, as installed. */
const CLI_VERSION = (require('../package.json') as { version: string }).version;

/**
 * Runs the `openclaw` command line.
 * @example
 * await main(['node', 'openclaw', 'gateway', 'status', '--json']);
 */
export async function main(argv: readonly string[]): Promise<void> {
  const defaults = { url: process.env.OPENCLAW_URL ?? 'http://127.0.0.1:18789', apiKey: process.env.OPENCLAW_API_KEY };
  const program = new Command('openclaw')
    .description('OpenClaw Gateway: a gateway-first coordination layer for multi-agent systems')
    .version(CLI_VERSION, '-V, --version', 'print the version of the openclaw command')
    .showHelpAfterError()
    .exitOverride((error) => {
      // Help and version exit 0; usage errors exit 2 (commander printed the message already).
      process.exit(error.exitCode === 0 ? 0 : 2);
    });
  addGatewayCommands(program, defaults);
  addAgentCommands(program, defaults);
  addApiKeyCommands(program, defaults);
  addAuditCommands(program, defaults);
  addPolicyCommands(program, defaults);
  addGovernanceCommands(program, defaults);
  addApprovalCommands(program, defaults);
  addWorkerCommands(program, defaults);
  addTaskCommands(program, defaults);
  addStateCommands(program, defaults);
  addUpCommand(program);
  await program.parseAsync([...argv]);
}
