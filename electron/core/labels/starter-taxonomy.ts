import type { LabelKind } from './label-kinds.js';

export interface TaxonomyEntryInput {
  kind: Exclude<LabelKind, 'note'>;
  code: string;
  displayName: string;
  parentCode?: string | null;
  hotkey?: string | null;
  sortOrder?: number;
}

/** Bump when the starter list changes, so libraries made earlier receive the new entries once. */
export const starterTaxonomyVersion = 1;

type Node = [code: string, displayName: string, hotkey?: string, children?: Node[]];

/**
 * Conditions: the ten most frequent conditions in SCIN's dermatologist labels carry hotkeys; the rest
 * is a broad clinical grouping so that a label can be as specific as the annotator can be.
 */
const conditionTree: Node[] = [
  [
    'inflammatory',
    'Inflammatory',
    undefined,
    [
      ['eczema', 'Eczema', 'e'],
      ['allergic_contact_dermatitis', 'Allergic contact dermatitis', 'a'],
      ['irritant_contact_dermatitis', 'Irritant contact dermatitis', 'c'],
      ['seborrhoeic_dermatitis', 'Seborrhoeic dermatitis'],
      ['psoriasis', 'Psoriasis', 'p'],
      ['lichen_planus', 'Lichen planus'],
      ['pityriasis_rosea', 'Pityriasis rosea'],
      ['urticaria', 'Urticaria', 'u'],
      ['drug_rash', 'Drug rash', 'd'],
      ['insect_bite', 'Insect bite', 'i'],
      ['acne', 'Acne'],
      ['rosacea', 'Rosacea'],
      ['perioral_dermatitis', 'Perioral dermatitis'],
      ['granuloma_annulare', 'Granuloma annulare'],
      ['cutaneous_lupus', 'Cutaneous lupus erythematosus'],
      ['prurigo_nodularis', 'Prurigo nodularis'],
      ['lichen_simplex_chronicus', 'Lichen simplex chronicus'],
      ['stasis_dermatitis', 'Stasis dermatitis'],
      ['hidradenitis_suppurativa', 'Hidradenitis suppurativa'],
      ['vasculitis', 'Cutaneous vasculitis'],
    ],
  ],
  [
    'infectious',
    'Infectious',
    undefined,
    [
      ['tinea', 'Tinea', 't'],
      ['tinea_versicolor', 'Tinea versicolor'],
      ['candidiasis', 'Cutaneous candidiasis'],
      ['folliculitis', 'Folliculitis', 'f'],
      ['impetigo', 'Impetigo'],
      ['cellulitis', 'Cellulitis'],
      ['abscess', 'Abscess'],
      ['herpes_zoster', 'Herpes zoster', 'z'],
      ['herpes_simplex', 'Herpes simplex'],
      ['molluscum_contagiosum', 'Molluscum contagiosum'],
      ['viral_warts', 'Viral warts'],
      ['scabies', 'Scabies'],
      ['viral_exanthem', 'Viral exanthem'],
    ],
  ],
  [
    'neoplastic_benign',
    'Neoplastic, benign',
    undefined,
    [
      ['melanocytic_naevus', 'Melanocytic naevus'],
      ['seborrhoeic_keratosis', 'Seborrhoeic keratosis'],
      ['dermatofibroma', 'Dermatofibroma'],
      ['haemangioma', 'Haemangioma'],
      ['pyogenic_granuloma', 'Pyogenic granuloma'],
      ['skin_tag', 'Skin tag (acrochordon)'],
      ['epidermoid_cyst', 'Epidermoid cyst'],
      ['lipoma', 'Lipoma'],
    ],
  ],
  [
    'neoplastic_premalignant',
    'Neoplastic, pre-malignant',
    undefined,
    [
      ['actinic_keratosis', 'Actinic keratosis'],
      ['bowens_disease', "Bowen's disease (SCC in situ)"],
    ],
  ],
  [
    'neoplastic_malignant',
    'Neoplastic, malignant',
    undefined,
    [
      ['basal_cell_carcinoma', 'Basal cell carcinoma'],
      ['squamous_cell_carcinoma', 'Squamous cell carcinoma'],
      ['melanoma', 'Melanoma'],
      ['kaposi_sarcoma', 'Kaposi sarcoma'],
      ['cutaneous_lymphoma', 'Cutaneous T-cell lymphoma'],
    ],
  ],
  [
    'pigmentary',
    'Pigmentary',
    undefined,
    [
      ['vitiligo', 'Vitiligo'],
      ['melasma', 'Melasma'],
      ['post_inflammatory_hyperpigmentation', 'Post-inflammatory hyperpigmentation'],
      ['lentigo', 'Lentigo'],
    ],
  ],
  [
    'other_conditions',
    'Other',
    undefined,
    [
      ['alopecia_areata', 'Alopecia areata'],
      ['keloid', 'Keloid / hypertrophic scar'],
      ['xerosis', 'Xerosis (dry skin)'],
      ['callus', 'Callus / corn'],
      ['inflicted_skin_lesion', 'Inflicted skin lesion'],
      ['normal_skin', 'Normal skin'],
    ],
  ],
];

/** SCIN's body parts, in its own codes, so imported metadata and labels share one vocabulary. */
const bodySites: Node[] = [
  ['HEAD_OR_NECK', 'Head or neck', 'h'],
  ['ARM', 'Arm', 'a'],
  ['PALM', 'Palm', 'p'],
  ['BACK_OF_HAND', 'Back of hand', 'b'],
  ['TORSO_FRONT', 'Torso, front', 'f'],
  ['TORSO_BACK', 'Torso, back', 'k'],
  ['GENITALIA_OR_GROIN', 'Genitalia or groin', 'g'],
  ['BUTTOCKS', 'Buttocks', 'u'],
  ['LEG', 'Leg', 'l'],
  ['FOOT_TOP_OR_SIDE', 'Foot, top or side', 't'],
  ['FOOT_SOLE', 'Foot, sole', 's'],
  ['OTHER', 'Other', 'o'],
];

const fitzpatrick: Node[] = ['I', 'II', 'III', 'IV', 'V', 'VI'].map((code, index) => [code, `Fitzpatrick type ${code}`, String(index + 1)]);

const monkTone: Node[] = Array.from({ length: 10 }, (_, index) => [String(index + 1), `Monk skin tone ${index + 1}`, String((index + 1) % 10)] as Node);

const severity: Node[] = [
  ['mild', 'Mild', '1'],
  ['moderate', 'Moderate', '2'],
  ['severe', 'Severe', '3'],
];

const gradable: Node[] = [
  ['yes', 'Gradable', 'y'],
  ['no', 'Not gradable', 'n'],
];

const qualityFlags: Node[] = [
  ['blurry', 'Blurry', 'b'],
  ['poor_lighting', 'Poor lighting', 'l'],
  ['obstruction_or_hair', 'Obstruction or hair', 'o'],
  ['not_skin', 'Not skin', 'n'],
  ['too_far', 'Too far', 'f'],
  ['identifiable_features', 'Identifiable features', 'i'],
];

function flatten(kind: TaxonomyEntryInput['kind'], nodes: Node[], parentCode: string | null = null, out: TaxonomyEntryInput[] = []): TaxonomyEntryInput[] {
  for (const [code, displayName, hotkey, children] of nodes) {
    out.push({ kind, code, displayName, parentCode, hotkey: hotkey ?? null, sortOrder: out.length });
    if (children) flatten(kind, children, code, out);
  }
  return out;
}

/** The taxonomy every new library starts with (installed on first use). */
export function starterTaxonomy(): TaxonomyEntryInput[] {
  return [
    ...flatten('condition', conditionTree),
    ...flatten('body_site', bodySites),
    ...flatten('fitzpatrick', fitzpatrick),
    ...flatten('monk_tone', monkTone),
    ...flatten('severity', severity),
    ...flatten('gradable', gradable),
    ...flatten('quality_flag', qualityFlags),
  ];
}
