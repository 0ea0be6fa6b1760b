import type { CallInput, CallOutput } from '../../../../electron/common/contract.js';
import { api } from '../api/api.js';

export type AgreementReport = CallOutput<'agreementReport'>;
export type KindAgreement = AgreementReport['kinds'][number];
export type Disagreement = AgreementReport['disagreements'][number];

/**
 * The agreement screen's data: κ per label kind and the images annotators disagree on, reloaded after
 * each adjudication (which goes through the same core service as `dermws adjudicate`).
 */
export class AgreementState {
  report = $state.raw<AgreementReport | null>(null);
  kind = $state<string | null>(null);
  includeAdjudicated = $state(false);
  loading = $state(false);

  readonly kinds = $derived((this.report?.kinds ?? []).filter((entry) => entry.annotators.length >= 2));
  readonly selected = $derived(this.kinds.find((entry) => entry.kind === this.kind) ?? this.kinds[0] ?? null);
  readonly disagreements = $derived((this.report?.disagreements ?? []).filter((entry) => entry.kind === this.selected?.kind));

  async load(): Promise<void> {
    this.loading = true;
    try {
      this.report = await api.agreementReport(this.includeAdjudicated ? { includeAdjudicated: true } : {});
    } finally {
      this.loading = false;
    }
  }

  async adjudicate(item: Disagreement, values: string[], annotator: string): Promise<CallOutput<'adjudicate'>> {
    const result = await api.adjudicate({ imageId: item.imageId, kind: item.kind as CallInput<'adjudicate'>['kind'], values, annotator });
    await this.load();
    return result;
  }
}

/** κ as the CLI prints it: three decimals, or "n/a" where it is undefined (chance agreement 1). */
export function formatKappa(kappa: number | null): string {
  return kappa === null ? 'n/a' : kappa.toFixed(3);
}

/** Landis & Koch's words for a κ, so a number is not read as more certain than it is. */
export function kappaWords(kappa: number | null): string {
  if (kappa === null) return 'undefined: every rating was the same';
  if (kappa < 0) return 'worse than chance';
  if (kappa <= 0.2) return 'slight';
  if (kappa <= 0.4) return 'fair';
  if (kappa <= 0.6) return 'moderate';
  if (kappa <= 0.8) return 'substantial';
  return 'almost perfect';
}
