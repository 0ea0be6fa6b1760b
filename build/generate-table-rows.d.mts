/** The row-type file's path and its generator (see generate-table-rows.mjs). */
export const tableRowsFile: string;
export function generateTableRows(migrationsFolder?: string): string;
