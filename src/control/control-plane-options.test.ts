import { describe, expect, it } from 'vitest';
import { resolveControlTimeouts } from './control-plane-options.js';

describe('resolveControlTimeouts', () => {
  it('applies every documented default once', () => {
    expect(resolveControlTimeouts()).toEqual({
      coldPromotionReadyMs: 10_000,
      switchoverFilesMs: 10_000,
      switchoverExternalMs: 10_000,
      switchoverMutationsFactor: 5,
      promotionHookMs: 5000,
      echoReadyMs: 10_000,
      failedPromotionGraceMs: 1000,
      fileRestoreMs: 120_000,
      replayRestoreMs: 60_000,
      readyProbeMs: 200,
      readyPollMs: 10,
      adoptUnreachableMs: 10_000,
    });
  });

  it('keeps what is given and defaults the rest', () => {
    const t = resolveControlTimeouts({ coldPromotionReadyMs: 2500 });
    expect(t.coldPromotionReadyMs).toBe(2500);
    expect(t.promotionHookMs).toBe(5000);
  });
});
