/**
 * Dataset cells spell the same judgement many ways (FST3, 3, III; 3.0 for a Monk tone a spreadsheet
 * turned into a float; DEFAULT_YES_IMAGE_QUALITY_SUFFICIENT for "gradable"). These turn a cell into
 * the value the labels table stores, or say why it cannot be one.
 */
export type ValueResult = { ok: true; value: string } | { ok: false; message: string };

const romanNumerals = ['I', 'II', 'III', 'IV', 'V', 'VI'];

/** Fitzpatrick skin type → 'I'..'VI'. Accepts FST1..FST6, 1..6, I..VI and "type IV". */
export function fitzpatrickValue(raw: string): ValueResult {
  const text = raw
    .trim()
    .toUpperCase()
    .replace(/^(FST|TYPE\s*|FITZPATRICK\s*(TYPE\s*)?)/, '');
  const asNumber = /^[1-6](\.0+)?$/.test(text) ? Number.parseInt(text, 10) : romanNumerals.indexOf(text) + 1;
  if (asNumber >= 1 && asNumber <= 6) return { ok: true, value: romanNumerals[asNumber - 1]! };
  return { ok: false, message: 'expected a Fitzpatrick skin type: FST1–FST6, 1–6 or I–VI' };
}

/** Fitzpatrick skin type → the 'FST1'..'FST6' form SCIN uses for self-reported metadata. */
export function fitzpatrickMetadataValue(raw: string): ValueResult {
  const roman = fitzpatrickValue(raw);
  if (!roman.ok) return roman;
  return { ok: true, value: `FST${romanNumerals.indexOf(roman.value) + 1}` };
}

/** Monk skin tone → '1'..'10'. Accepts whole numbers written as floats ("4.0"). */
export function monkToneValue(raw: string): ValueResult {
  const text = raw.trim();
  if (/^\d+(\.0+)?$/.test(text)) {
    const tone = Number.parseInt(text, 10);
    if (tone >= 1 && tone <= 10) return { ok: true, value: String(tone) };
  }
  return { ok: false, message: 'expected a Monk skin tone from 1 to 10' };
}

/**
 * Gradable → 'yes' | 'no'. SCIN writes DEFAULT_YES_IMAGE_QUALITY_SUFFICIENT for gradable and
 * NO_… (e.g. NO_IMAGE_QUALITY_INSUFFICIENT) for not gradable; plain YES/NO, true/false, 1/0 also work.
 */
export function gradableValue(raw: string): ValueResult {
  const text = raw.trim().toUpperCase();
  if (/^(DEFAULT_)?YES(_|$)/.test(text) || text === 'Y' || text === 'TRUE' || text === '1') return { ok: true, value: 'yes' };
  if (/^(DEFAULT_)?NO(_|$)/.test(text) || text === 'N' || text === 'FALSE' || text === '0') return { ok: true, value: 'no' };
  return { ok: false, message: 'expected a gradable flag: YES/NO, DEFAULT_YES_… or NO_…' };
}

/** A free name ("Allergic Contact Dermatitis") as a taxonomy-style code ("allergic_contact_dermatitis"). */
export function codeFromName(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/['’]/g, '')
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}
