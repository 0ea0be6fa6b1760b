/** What `dermws export --format` and the Export screen can write. Apart from the export service so the CLI can list them without loading it. */
export const exportFormats = ['csv', 'npz', 'npy'] as const;
export type ExportFormat = (typeof exportFormats)[number];
