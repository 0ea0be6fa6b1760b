import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { app, BrowserWindow, dialog, ipcMain, Menu, net, protocol, screen, session, shell, type WebContents } from 'electron';
import { desktopContentSecurityPolicy } from '../common/content-security-policy.js';
import { resolveLibraryFolder } from '../core/library/library-location.js';
import { startAppApiHost, type AppApiHost } from '../core/app-api/transport/app-api-host.js';
import { appVersion } from '../core/library/installation.js';
import { mediaBody, openMediaStream } from '../core/media/media-file.js';
import { createInvokeHandler, eventChannel, invokeChannel } from './ipc-bridge.js';
import { isRendererUrl, libraryArgument, parseMediaUrl, rendererEntry, rendererFile, trustedWindowState, type WindowState } from './shell-policy.js';

/**
 * The Electron main process: lifecycle, one window, the app:// and derm-media:// protocols and the IPC
 * bridge to the core. The core itself (SQLite, import, encoders) runs in a worker thread started by
 * startAppApiHost, so the main process only routes messages and never blocks the window.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
// dist/electron/main → project root (development) or app.asar root (packaged).
const appRoot = path.resolve(here, '../../..');
const rendererFolder = path.join(appRoot, 'dist-renderer');
const preloadFile = path.join(here, '../preload/preload.cjs');

app.setName('derm-workstation');
app.enableSandbox();

protocol.registerSchemesAsPrivileged([
  { scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } },
  { scheme: 'derm-media', privileges: { standard: true, secure: true, supportFetchAPI: true, stream: true } },
]);

let mainWindow: BrowserWindow | undefined;
let api: AppApiHost | undefined;

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => {
    if (!mainWindow) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
  app.on('web-contents-created', (_event, contents) => lockDown(contents));
  app.whenReady().then(start, (error: unknown) => fatal(error));
  app.on('window-all-closed', () => app.quit());
  let closing = false;
  app.on('will-quit', (event) => {
    if (closing || !api) return;
    // Let running jobs stop between units of work and the library close cleanly before exit.
    event.preventDefault();
    closing = true;
    void api.close().finally(() => app.quit());
  });
}

function fatal(error: unknown): void {
  dialog.showErrorBox('derm-workstation could not start', error instanceof Error ? error.message : String(error));
  app.exit(1);
}

/** Every web contents: no navigation away, no new windows, no webviews. */
function lockDown(contents: WebContents): void {
  contents.on('will-navigate', (event, url) => {
    if (!isRendererUrl(url)) event.preventDefault();
  });
  contents.on('will-redirect', (event, url) => {
    if (!isRendererUrl(url)) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
}

async function start(): Promise<void> {
  const libraryFolder = resolveLibraryFolder(libraryArgument(process.argv));
  try {
    api = await startAppApiHost({ libraryFolder, options: { mode: 'electron', appVersion: appVersion(appRoot) } });
  } catch (error) {
    fatal(error);
    return;
  }
  const host = api;

  const ses = session.defaultSession;
  ses.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);
  ses.setDevicePermissionHandler(() => false);
  // No remote content: the window may only load our own schemes (and devtools in development).
  ses.webRequest.onBeforeRequest((details, callback) => {
    const allowed = /^(app|derm-media|devtools|blob|data):/.test(details.url);
    callback({ cancel: !allowed });
  });

  protocol.handle('app', async (request) => {
    const file = rendererFile(request.url, rendererFolder);
    if (!file || !fs.existsSync(file)) return new Response('Not found', { status: 404 });
    const response = await net.fetch(pathToFileURL(file).href);
    const headers = new Headers(response.headers);
    headers.set('Content-Security-Policy', desktopContentSecurityPolicy);
    headers.set('X-Content-Type-Options', 'nosniff');
    return new Response(response.body, { status: response.status, headers });
  });

  protocol.handle('derm-media', async (request) => {
    const media = parseMediaUrl(request.url);
    if (!media) return new Response('Not found', { status: 404 });
    try {
      const body = await mediaBody(media.kind, await host.mediaFile(media.kind, media.imageId), media.imageId);
      if ('bytes' in body) return new Response(new Uint8Array(body.bytes), { headers: { 'Content-Type': body.type } });
      // Read by our own stream (no symlink followed at the last step), not net.fetch of a file URL.
      const stream = await openMediaStream(body.file, media.imageId);
      return new Response(Readable.toWeb(stream) as ReadableStream<Uint8Array>, {
        headers: { 'Content-Type': body.type, 'Cache-Control': 'private, max-age=3600' },
      });
    } catch {
      return new Response('Not found', { status: 404 });
    }
  });

  const invoke = createInvokeHandler(host);
  ipcMain.handle(invokeChannel, (event, call: unknown, input: unknown) => invoke(event, call, input));
  host.subscribe((event) => {
    if (mainWindow && !mainWindow.isDestroyed()) mainWindow.webContents.send(eventChannel, event);
  });

  Menu.setApplicationMenu(buildMenu(libraryFolder));
  createWindow();
}

function windowStateFile(): string {
  return path.join(app.getPath('userData'), 'window-state.json');
}

function readWindowState(): WindowState {
  let saved: unknown;
  try {
    saved = JSON.parse(fs.readFileSync(windowStateFile(), 'utf8'));
  } catch {
    saved = undefined;
  }
  return trustedWindowState(
    saved,
    screen.getAllDisplays().map((display) => display.workArea),
  );
}

function saveWindowState(window: BrowserWindow): void {
  const state: WindowState = { bounds: window.getNormalBounds(), maximized: window.isMaximized() };
  try {
    fs.mkdirSync(path.dirname(windowStateFile()), { recursive: true });
    fs.writeFileSync(windowStateFile(), JSON.stringify(state));
  } catch {
    // Losing the window position is harmless; the next start uses the default size.
  }
}

function createWindow(): void {
  const state = readWindowState();
  const window = new BrowserWindow({
    ...(state.bounds.x >= 0 || state.bounds.y >= 0 ? { x: state.bounds.x, y: state.bounds.y } : {}),
    width: state.bounds.width,
    height: state.bounds.height,
    minWidth: 960,
    minHeight: 640,
    show: false,
    backgroundColor: '#f4f6f7',
    title: 'derm-workstation',
    webPreferences: {
      preload: preloadFile,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
      devTools: !app.isPackaged,
    },
  });
  mainWindow = window;
  if (state.maximized) window.maximize();
  window.once('ready-to-show', () => window.show());
  window.on('close', () => saveWindowState(window));
  window.on('closed', () => {
    mainWindow = undefined;
  });
  void window.loadURL(rendererEntry);
}

function buildMenu(libraryFolder: string): Menu {
  const isMac = process.platform === 'darwin';
  return Menu.buildFromTemplate([
    ...(isMac ? [{ role: 'appMenu' as const }] : []),
    {
      label: 'File',
      submenu: [
        // openPath opens our own library folder in the file manager; no user data is ever given to openExternal.
        { label: 'Show library folder', click: () => void shell.openPath(libraryFolder) },
        { type: 'separator' },
        isMac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [
        { role: 'reload' },
        ...(app.isPackaged ? [] : [{ role: 'toggleDevTools' as const }]),
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
    { role: 'windowMenu' },
    {
      role: 'help',
      submenu: [{ label: `derm-workstation ${appVersion(appRoot)}`, enabled: false }],
    },
  ]);
}
