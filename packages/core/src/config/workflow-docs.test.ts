import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeIssues, WorkflowDefinitionSchema } from '@openclaw/protocol';
import { parse } from 'yaml';

/** Every workflow definition the docs show is one the gateway accepts: a stale example fails here. */
const FILE = join(__dirname, '../../../../docs/coordination.md');

function workflowBlocks(): [number, string][] {
  const text = readFileSync(FILE, 'utf8');
  const out: [number, string][] = [];
  for (const match of text.matchAll(/```yaml\n([\s\S]*?)```/g)) {
    if (/^steps:/m.test(match[1]!)) out.push([text.slice(0, match.index).split('\n').length, match[1]!]);
  }
  return out;
}

describe('workflow definitions in docs/coordination.md', () => {
  it('has examples of conditions, switches and plans', () => {
    const all = workflowBlocks()
      .map(([, b]) => b)
      .join('\n');
    for (const word of ['when:', 'switch:', 'plan:', 'parallel:']) expect(all).toContain(word);
  });

  it.each(workflowBlocks())('the block at line %d is a valid workflow', (_line, block) => {
    const parsed = WorkflowDefinitionSchema.safeParse(parse(block));
    expect(parsed.success ? [] : describeIssues(parsed.error)).toEqual([]);
  });
});
