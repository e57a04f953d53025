import { loadGatewayConfig } from '../config/gateway-config';
import { asyncTaskDefaults } from './async-task-defaults';

describe('asyncTaskDefaults', () => {
  it("gives a worker, which has no task settings of its own, the gateway's defaults", () => {
    const gateway = loadGatewayConfig({ env: { OPENCLAW_AUTH: 'none' } });
    expect(asyncTaskDefaults()).toEqual(asyncTaskDefaults(gateway));
    expect(asyncTaskDefaults()).toEqual({
      attempts: 3,
      backoffMs: 1000,
      timeoutMs: 30_000,
      retentionMs: 604_800_000,
      idempotencyWindowMs: 86_400_000,
      escalationTimeoutMs: 86_400_000,
      workflowDeadlineMs: 86_400_000,
    });
  });
});
