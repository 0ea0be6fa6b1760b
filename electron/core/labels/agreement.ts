import { DermError } from '../../common/errors.js';

/**
 * Inter-annotator agreement on categorical ratings. Pure functions: the agreement service gathers the
 * ratings from the labels table and calls these.
 */

export interface CohenKappaResult {
  /** Items both raters rated. */
  items: number;
  /** Observed agreement p_o (the percent agreement as a fraction). */
  observed: number;
  /** Agreement expected by chance from each rater's marginals, p_e = Σ_c p_A(c)·p_B(c). */
  expected: number;
  /** (p_o − p_e) / (1 − p_e); null when p_e = 1 (both raters used one and the same category throughout), where κ is undefined. */
  kappa: number | null;
}

/** Cohen's κ from a square contingency table: table[i][j] = items rater A put in category i and rater B in j. */
export function cohensKappaFromTable(table: number[][]): CohenKappaResult {
  const size = table.length;
  if (size === 0 || table.some((row) => row.length !== size)) {
    throw new DermError(
      'invalid-input',
      `A contingency table for Cohen's kappa must be square; got ${table.map((row) => row.length).join('/')} columns for ${size} rows.`,
    );
  }
  let items = 0;
  let agreeing = 0;
  const rowTotals = new Array<number>(size).fill(0);
  const columnTotals = new Array<number>(size).fill(0);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      const count = table[i]![j]!;
      if (!Number.isFinite(count) || count < 0) throw new DermError('invalid-input', `Contingency table cell [${i}][${j}] must be a count ≥ 0; got ${count}.`);
      items += count;
      rowTotals[i]! += count;
      columnTotals[j]! += count;
      if (i === j) agreeing += count;
    }
  }
  if (items === 0) return { items: 0, observed: Number.NaN, expected: Number.NaN, kappa: null };
  const observed = agreeing / items;
  let expected = 0;
  for (let c = 0; c < size; c++) expected += (rowTotals[c]! / items) * (columnTotals[c]! / items);
  return { items, observed, expected, kappa: chanceCorrected(observed, expected) };
}

/** Cohen's κ of two raters' categories for the same items (ratingsA[i] and ratingsB[i] rate item i). */
export function cohensKappa(ratingsA: readonly string[], ratingsB: readonly string[]): CohenKappaResult {
  if (ratingsA.length !== ratingsB.length) {
    throw new DermError('invalid-input', `Cohen's kappa needs both raters to rate the same items; got ${ratingsA.length} and ${ratingsB.length} ratings.`);
  }
  const categories = [...new Set([...ratingsA, ...ratingsB])].sort();
  const index = new Map(categories.map((category, position) => [category, position]));
  const table = categories.map(() => new Array<number>(categories.length).fill(0));
  ratingsA.forEach((rating, item) => {
    table[index.get(rating)!]![index.get(ratingsB[item]!)!]!++;
  });
  return categories.length === 0 ? { items: 0, observed: Number.NaN, expected: Number.NaN, kappa: null } : cohensKappaFromTable(table);
}

export interface FleissKappaResult {
  items: number;
  raters: number;
  /** Mean per-item agreement P̄ (the probability that two raters picked at random agree on an item). */
  observed: number;
  /** Chance agreement P̄_e = Σ_j p_j². */
  expected: number;
  kappa: number | null;
  /** p_j: share of all ratings that went to each category, in the column order given. */
  categoryShares: number[];
}

/**
 * Fleiss' κ from a count matrix: counts[i][j] = raters who put item i in category j. Every item must have
 * the same number of raters (n ≥ 2).
 */
export function fleissKappaFromCounts(counts: number[][]): FleissKappaResult {
  const items = counts.length;
  if (items === 0) return { items: 0, raters: 0, observed: Number.NaN, expected: Number.NaN, kappa: null, categoryShares: [] };
  const categories = counts[0]!.length;
  const raters = counts[0]!.reduce((sum, count) => sum + count, 0);
  if (raters < 2) throw new DermError('invalid-input', `Fleiss' kappa needs at least 2 ratings per item; item 1 has ${raters}.`);
  const columnTotals = new Array<number>(categories).fill(0);
  let sumAgreement = 0;
  counts.forEach((row, item) => {
    if (row.length !== categories)
      throw new DermError('invalid-input', `Fleiss' kappa: item ${item + 1} has ${row.length} categories; item 1 has ${categories}.`);
    const total = row.reduce((sum, count) => sum + count, 0);
    if (total !== raters)
      throw new DermError(
        'invalid-input',
        `Fleiss' kappa needs the same number of ratings for every item; item ${item + 1} has ${total}, item 1 has ${raters}.`,
      );
    let squares = 0;
    row.forEach((count, category) => {
      squares += count * count;
      columnTotals[category]! += count;
    });
    sumAgreement += (squares - raters) / (raters * (raters - 1));
  });
  const observed = sumAgreement / items;
  const categoryShares = columnTotals.map((total) => total / (items * raters));
  const expected = categoryShares.reduce((sum, share) => sum + share * share, 0);
  return { items, raters, observed, expected, kappa: chanceCorrected(observed, expected), categoryShares };
}

/** Fleiss' κ from ratings per item: ratings[i] lists the categories the raters gave item i (same count for all). */
export function fleissKappa(ratings: readonly (readonly string[])[]): FleissKappaResult {
  const categories = [...new Set(ratings.flat())].sort();
  const index = new Map(categories.map((category, position) => [category, position]));
  const counts = ratings.map((itemRatings) => {
    const row = new Array<number>(categories.length).fill(0);
    for (const rating of itemRatings) row[index.get(rating)!]!++;
    return row;
  });
  return fleissKappaFromCounts(counts);
}

/** Share of items on which every rater gave the same category. */
export function unanimousAgreement(ratings: readonly (readonly string[])[]): number {
  if (ratings.length === 0) return Number.NaN;
  return ratings.filter((itemRatings) => itemRatings.every((rating) => rating === itemRatings[0])).length / ratings.length;
}

function chanceCorrected(observed: number, expected: number): number | null {
  // Floating point can leave 1 − p_e a hair above zero when it is mathematically zero.
  if (1 - expected < 1e-12) return null;
  return (observed - expected) / (1 - expected);
}
