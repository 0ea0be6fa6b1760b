import { openLibrary, type Library } from './library/library.js';
import { resolveLibraryFolder } from './library/library-location.js';
import { SettingsRepository } from './library/settings.repository.js';

export interface CoreConfig {
  /** Library folder; when absent, DERMWS_LIBRARY or the OS application-data folder is used. */
  libraryFolder?: string;
}

/**
 * The workstation's services wired together over one library. The desktop app, the `dermws` CLI and
 * the local web mode all call createCore and use the same services.
 */
export interface Core {
  readonly library: Library;
  readonly settings: SettingsRepository;
  close(): void;
}

export function createCore(config: CoreConfig = {}): Core {
  const library = openLibrary(resolveLibraryFolder(config.libraryFolder));
  const settings = new SettingsRepository(library.db);
  return {
    library,
    settings,
    close: () => library.close(),
  };
}
