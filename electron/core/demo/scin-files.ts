/**
 * The column layout of SCIN's two CSV files (scin_cases.csv, scin_labels.csv) and the Python-literal
 * cells they hold (lists and dicts), for writing SCIN-shaped datasets: the demo library and the tests.
 */

export const scinCaseColumns = [
  'case_id',
  'source',
  'release',
  'year',
  'age_group',
  'sex_at_birth',
  'fitzpatrick_skin_type',
  'race_ethnicity_american_indian_or_alaska_native',
  'race_ethnicity_asian',
  'race_ethnicity_black_or_african_american',
  'race_ethnicity_hispanic_latino_or_spanish_origin',
  'race_ethnicity_middle_eastern_or_north_african',
  'race_ethnicity_native_hawaiian_or_pacific_islander',
  'race_ethnicity_white',
  'race_ethnicity_other_race',
  'race_ethnicity_prefer_not_to_answer',
  'textures_raised_or_bumpy',
  'textures_flat',
  'textures_rough_or_flaky',
  'textures_fluid_filled',
  'body_parts_head_or_neck',
  'body_parts_arm',
  'body_parts_palm',
  'body_parts_back_of_hand',
  'body_parts_torso_front',
  'body_parts_torso_back',
  'body_parts_genitalia_or_groin',
  'body_parts_buttocks',
  'body_parts_leg',
  'body_parts_foot_top_or_side',
  'body_parts_foot_sole',
  'body_parts_other',
  'condition_symptoms_bothersome_appearance',
  'condition_symptoms_bleeding',
  'condition_symptoms_increasing_size',
  'condition_symptoms_darkening',
  'condition_symptoms_itching',
  'condition_symptoms_burning',
  'condition_symptoms_pain',
  'condition_symptoms_no_relevant_experience',
  'other_symptoms_fever',
  'other_symptoms_chills',
  'other_symptoms_fatigue',
  'other_symptoms_joint_pain',
  'other_symptoms_mouth_sores',
  'other_symptoms_shortness_of_breath',
  'other_symptoms_no_relevant_symptoms',
  'related_category',
  'condition_duration',
  'image_1_path',
  'image_2_path',
  'image_3_path',
  'image_1_shot_type',
  'image_2_shot_type',
  'image_3_shot_type',
] as const;

export const scinLabelColumns = [
  'case_id',
  'dermatologist_gradable_for_skin_condition_1',
  'dermatologist_gradable_for_skin_condition_2',
  'dermatologist_gradable_for_skin_condition_3',
  'dermatologist_skin_condition_on_label_name',
  'dermatologist_skin_condition_confidence',
  'weighted_skin_condition_label',
  'dermatologist_gradable_for_fitzpatrick_skin_type_1',
  'dermatologist_gradable_for_fitzpatrick_skin_type_2',
  'dermatologist_gradable_for_fitzpatrick_skin_type_3',
  'dermatologist_fitzpatrick_skin_type_label_1',
  'dermatologist_fitzpatrick_skin_type_label_2',
  'dermatologist_fitzpatrick_skin_type_label_3',
  'gradable_for_monk_skin_tone_india',
  'gradable_for_monk_skin_tone_us',
  'monk_skin_tone_label_india',
  'monk_skin_tone_label_us',
] as const;

export function pythonList(items: Array<string | number>): string {
  return `[${items.map((item) => (typeof item === 'string' ? pythonString(item) : String(item))).join(', ')}]`;
}

export function pythonString(text: string): string {
  return text.includes("'") ? `"${text}"` : `'${text}'`;
}

export function pythonDict(weights: Record<string, number>): string {
  return `{${Object.entries(weights)
    .map(([key, value]) => `${pythonString(key)}: ${value}`)
    .join(', ')}}`;
}
