import type { ImageFilter } from '../../../../electron/common/contract.js';
import { api } from '../api/api.js';

const pageSize = 500;

/**
 * The library grid's data: the filter, the total, and the image ids fetched page by page as rows come
 * into view (a 100k library never loads whole). Pages live in a plain Map; `version` tells the grid a
 * page arrived. Selection is a Set replaced on change ($state.raw), so big selections stay cheap.
 */
export class LibraryGridState {
  filter = $state.raw<ImageFilter>({});
  total = $state(0);
  version = $state(0);
  selection = $state.raw<ReadonlySet<number>>(new Set());
  focusIndex = $state(0);
  detailId = $state<number | null>(null);
  private pages = new Map<number, number[]>();
  private loading = new Map<number, Promise<void>>();
  private generation = 0;
  private anchorIndex = 0;

  constructor(private readonly onError: (error: unknown) => void) {}

  async setFilter(filter: ImageFilter): Promise<void> {
    this.filter = filter;
    await this.reload();
  }

  async reload(): Promise<void> {
    this.generation++;
    this.pages = new Map();
    this.loading = new Map();
    await this.loadPage(0);
    this.version++;
  }

  idAt(index: number): number | undefined {
    return this.pages.get(Math.floor(index / pageSize))?.[index % pageSize];
  }

  /** Makes sure the ids of [start, end) are loaded or loading. */
  ensureRange(start: number, end: number): void {
    const last = Math.min(end, this.total) - 1;
    for (let page = Math.floor(Math.max(0, start) / pageSize); page <= Math.floor(last / pageSize); page++) {
      if (!this.pages.has(page) && !this.loading.has(page)) void this.loadPage(page).then(() => this.version++);
    }
  }

  private loadPage(page: number): Promise<void> {
    const generation = this.generation;
    const filter = this.filter;
    const promise = api
      .imagesPage({ filter, offset: page * pageSize, limit: pageSize })
      .then((result) => {
        if (generation !== this.generation) return;
        this.total = result.total;
        this.pages.set(page, result.ids);
      })
      .catch((error: unknown) => this.onError(error))
      .finally(() => this.loading.delete(page));
    this.loading.set(page, promise);
    return promise;
  }

  select(index: number, mode: 'only' | 'toggle' | 'range'): void {
    const id = this.idAt(index);
    if (id === undefined) return;
    this.focusIndex = index;
    if (mode === 'only') {
      this.selection = new Set([id]);
      this.anchorIndex = index;
    } else if (mode === 'toggle') {
      const next = new Set(this.selection);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      this.selection = next;
      this.anchorIndex = index;
    } else {
      const next = new Set(this.selection);
      const [from, to] = this.anchorIndex < index ? [this.anchorIndex, index] : [index, this.anchorIndex];
      for (let position = from; position <= to; position++) {
        const other = this.idAt(position);
        if (other !== undefined) next.add(other);
      }
      this.selection = next;
    }
  }

  /** Selects every image that matches the filter (at most 200,000), fetching their ids page by page. */
  async selectAll(): Promise<void> {
    const generation = this.generation;
    const filter = this.filter;
    const ids: number[] = [];
    try {
      for (let offset = 0; offset < Math.min(this.total, 200_000); offset += 5000) {
        const page = await api.imagesPage({ filter, offset, limit: 5000 });
        if (generation !== this.generation) return;
        ids.push(...page.ids);
        if (page.ids.length < 5000) break;
      }
      this.selection = new Set(ids);
    } catch (error) {
      this.onError(error);
    }
  }

  clearSelection(): void {
    this.selection = new Set();
  }
}
