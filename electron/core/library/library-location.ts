import os from 'node:os';
import path from 'node:path';

export const appFolderName = 'derm-workstation';

/**
 * The OS application-data folder the desktop app uses (Electron's `app.getPath('userData')` for an app
 * named "derm-workstation"), so the CLI, the web mode and the desktop app open the same library.
 */
export function applicationDataFolder(platform: NodeJS.Platform = process.platform, env = process.env): string {
  const home = os.homedir();
  if (platform === 'win32') return path.join(env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), appFolderName);
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', appFolderName);
  return path.join(env.XDG_CONFIG_HOME ?? path.join(home, '.config'), appFolderName);
}

/** `--library DIR` wins, then `DERMWS_LIBRARY`, then `<application data>/library`. */
export function resolveLibraryFolder(explicit?: string, env = process.env): string {
  if (explicit) return path.resolve(explicit);
  if (env.DERMWS_LIBRARY) return path.resolve(env.DERMWS_LIBRARY);
  return path.join(applicationDataFolder(process.platform, env), 'library');
}
