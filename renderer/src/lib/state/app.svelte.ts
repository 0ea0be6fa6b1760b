import type { CallOutput } from '../../../../electron/common/contract.js';
import { api, plainMessage } from '../api/api.js';

export type AppInfo = CallOutput<'appInfo'>;
export type LibraryOverview = CallOutput<'libraryOverview'>;

export interface Notice {
  id: number;
  tone: 'error' | 'info' | 'success';
  text: string;
}

/**
 * App-wide state: which screen shows (kept in the URL hash so reload and back work), the library
 * facts for the header, and notices (errors in plain words).
 */
export class AppState {
  screen = $state('library');
  info = $state.raw<AppInfo | null>(null);
  overview = $state.raw<LibraryOverview | null>(null);
  notices = $state.raw<Notice[]>([]);
  shortcutsOpen = $state(false);
  /** An image another screen asked the Similar cases screen to search with. */
  similarQuery = $state<number | null>(null);
  private nextNotice = 1;
  private readonly changeListeners = new Set<(what: string) => void>();

  constructor(private readonly screens: readonly string[]) {
    api.onLibraryChanged((what) => this.libraryChanged(what));
    this.screen = this.fromHash();
    window.addEventListener('hashchange', () => {
      this.screen = this.fromHash();
    });
  }

  private fromHash(): string {
    const wanted = window.location.hash.replace(/^#\/?/, '').split('?')[0] ?? '';
    return this.screens.includes(wanted) ? wanted : (this.screens[0] ?? 'library');
  }

  navigate(screen: string): void {
    if (!this.screens.includes(screen)) return;
    this.screen = screen;
    if (window.location.hash !== `#/${screen}`) window.location.hash = `#/${screen}`;
  }

  async load(): Promise<void> {
    try {
      this.info = await api.appInfo({});
      await this.refreshOverview();
    } catch (error) {
      this.notify('error', plainMessage(error));
    }
  }

  async refreshOverview(): Promise<void> {
    try {
      this.overview = await api.libraryOverview({});
    } catch (error) {
      this.notify('error', plainMessage(error));
    }
  }

  /** Screens reload what they show when the library changes (an import finished, flags were recomputed …). */
  onLibraryChanged(listener: (what: string) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  libraryChanged(what: string): void {
    void this.refreshOverview();
    for (const listener of this.changeListeners) listener(what);
  }

  /** Image ids another screen (the map's lasso) asked the library grid to show, with what they are. */
  libraryIds = $state.raw<number[] | null>(null);
  libraryIdsTitle = $state('Selection');

  openInLibrary(imageIds: number[], title = 'Map selection'): void {
    this.libraryIds = imageIds;
    this.libraryIdsTitle = title;
    this.navigate('library');
  }

  /** Images the Library's selection added to the next export (the Export screen offers "only these"). */
  exportIds = $state.raw<number[] | null>(null);

  addToExport(imageIds: number[]): void {
    this.exportIds = [...new Set([...(this.exportIds ?? []), ...imageIds])];
    this.navigate('export');
  }

  /** Images the Library's selection asked the map to highlight. */
  mapIds = $state.raw<number[] | null>(null);

  openInMap(imageIds: number[]): void {
    this.mapIds = imageIds;
    this.navigate('map');
  }

  /** Quality thresholds before each change made in this run of the app, newest last (the Quality screen's undo). */
  thresholdHistory = $state.raw<Array<{ description: string; thresholds: Record<string, number> }>>([]);

  /** A labelling session another screen created, for the Labelling screen to open. */
  sessionToOpen = $state<number | null>(null);

  openSession(sessionId: number): void {
    this.sessionToOpen = sessionId;
    this.navigate('labelling');
  }

  findSimilar(imageId: number): void {
    this.similarQuery = imageId;
    this.navigate('similar');
  }

  notify(tone: Notice['tone'], text: string): void {
    const notice = { id: this.nextNotice++, tone, text };
    this.notices = [...this.notices.slice(-3), notice];
    if (tone !== 'error') setTimeout(() => this.dismiss(notice.id), 6000);
  }

  dismiss(id: number): void {
    this.notices = this.notices.filter((notice) => notice.id !== id);
  }

  fail(error: unknown): void {
    this.notify('error', plainMessage(error));
  }
}
