/**
 * What a task in `input-required` waits for, in words: the approval (its validator, reason and id),
 * or a person's answer to the agent's question.
 */
export function waitingFor(question: unknown, approvalId: string | undefined): string {
  const { approval, message } = (question ?? {}) as {
    approval?: { approvalId?: string; validator?: string; reason?: string | null };
    message?: unknown;
  };
  if (approval !== undefined || approvalId !== undefined) {
    const why = `${approval?.validator ?? 'governance'}${approval?.reason ? `: ${approval.reason}` : ''}`;
    return `waiting for an approval (${why}); approval ${approval?.approvalId ?? approvalId}`;
  }
  return typeof message === 'string' && message !== ''
    ? `waiting for a human to answer: ${message}`
    : 'waiting for a human to answer';
}
