import path from 'node:path';

/**
 * Decisions of the Electron shell that need no Electron to make, kept here so they are tested in
 * plain Node: which URLs the window may show, which frames may call the contract, how app:// and
 * derm-media:// URLs map to files and images, and how a remembered window position is trusted.
 */

export const rendererOrigin = 'app://renderer';
export const rendererEntry = `${rendererOrigin}/index.html`;

/** True for the renderer's own documents; everything else (http, file, data, other app hosts) is refused. */
export function isRendererUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'app:' && parsed.host === 'renderer';
  } catch {
    return false;
  }
}

/**
 * The file of the built renderer behind an app://renderer URL, or undefined when the path would leave
 * the renderer folder.
 */
export function rendererFile(url: string, rendererFolder: string): string | undefined {
  if (!isRendererUrl(url)) return undefined;
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(url).pathname);
  } catch {
    return undefined;
  }
  const root = path.resolve(rendererFolder);
  const file = path.resolve(root, `.${pathname === '/' ? '/index.html' : pathname}`);
  return file.startsWith(root + path.sep) ? file : undefined;
}

/** derm-media://thumbnail/12 → { kind: 'thumbnail', imageId: 12 }; anything else → undefined. */
export function parseMediaUrl(url: string): { kind: 'thumbnail' | 'image'; imageId: number } | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'derm-media:' || parsed.search !== '' || parsed.hash !== '') return undefined;
  const kind = parsed.host;
  const id = parsed.pathname.replace(/^\//, '');
  if ((kind !== 'thumbnail' && kind !== 'image') || !/^[1-9][0-9]{0,15}$/.test(id)) return undefined;
  return { kind, imageId: Number(id) };
}

export interface WindowBounds {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface WindowState {
  bounds: WindowBounds;
  maximized: boolean;
}

export const defaultWindowState: WindowState = { bounds: { x: -1, y: -1, width: 1440, height: 900 }, maximized: false };

/**
 * A remembered window state, kept only when it is well-formed and at least 100×100 px of the window
 * still lies on one of today's displays (a monitor may have been unplugged since).
 */
export function trustedWindowState(saved: unknown, displays: WindowBounds[]): WindowState {
  if (!saved || typeof saved !== 'object') return defaultWindowState;
  const candidate = saved as Partial<WindowState>;
  const bounds = candidate.bounds;
  const valid =
    bounds &&
    [bounds.x, bounds.y, bounds.width, bounds.height].every((value) => typeof value === 'number' && Number.isFinite(value)) &&
    bounds.width >= 640 &&
    bounds.height >= 480 &&
    bounds.width <= 20_000 &&
    bounds.height <= 20_000;
  if (!valid) return defaultWindowState;
  const visible = displays.some((display) => {
    const overlapX = Math.min(bounds.x + bounds.width, display.x + display.width) - Math.max(bounds.x, display.x);
    const overlapY = Math.min(bounds.y + bounds.height, display.y + display.height) - Math.max(bounds.y, display.y);
    return overlapX >= 100 && overlapY >= 100;
  });
  return {
    bounds: visible
      ? { x: bounds.x, y: bounds.y, width: bounds.width, height: bounds.height }
      : { ...defaultWindowState.bounds, width: bounds.width, height: bounds.height },
    maximized: candidate.maximized === true,
  };
}

/** `--library DIR` from the command line (Electron passes its own switches too; those are ignored). */
export function libraryArgument(argv: readonly string[]): string | undefined {
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!;
    if (argument === '--library') return argv[index + 1];
    if (argument.startsWith('--library=')) return argument.slice('--library='.length);
  }
  return undefined;
}
