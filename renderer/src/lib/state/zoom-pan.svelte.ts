/** Where the image sits in its viewport, in CSS pixels (left/top relative to the viewport). */
export interface ImageBox {
  width: number;
  height: number;
  left: number;
  top: number;
}

const step = 1.5;
const wheelStep = 1.2;

/**
 * Zoom and pan of an image view, driven by buttons, keys, the wheel and pointer drags. `zoom` is relative
 * to the fitted size (1 = the whole image fits). A view that reports its image's natural size and its own
 * size (`measureImage`, `resize`) also gets the actual-pixels level (one image pixel per screen pixel),
 * a label in percent of the image's own pixels, and pan limits; it then places the image with `box`
 * instead of a CSS transform, so at 1:1 the browser draws the full-resolution pixels unscaled.
 *
 * The image detail, the labelling view and the side-by-side compare share it. The compare gives each
 * pane its own instance and links them (`ZoomPan.link`): a step, a wheel turn or a drag in either pane
 * moves both, so the same region of each lesion stays side by side, while each pane reaches its own
 * 1:1 (two photos of different sizes need different factors for it).
 */
export class ZoomPan {
  zoom = $state(1);
  offsetX = $state(0);
  offsetY = $state(0);
  natural = $state.raw<{ width: number; height: number } | null>(null);
  viewportWidth = $state(0);
  viewportHeight = $state(0);
  private lastPointer: { x: number; y: number } | null = null;
  /** This view and the views linked to it, which follow every step and drag. */
  private group: ZoomPan[] = [this];

  /** Links views so that every zoom step, fit, 1:1, wheel turn and drag in one applies to all of them. */
  static link(...views: ZoomPan[]): void {
    for (const view of views) view.group = views;
  }

  /** CSS pixels per image pixel when fitted (never enlarged above the image's own size), or null if unknown. */
  get fitScale(): number | null {
    if (!this.natural || this.viewportWidth <= 0 || this.viewportHeight <= 0) return null;
    return Math.min(1, this.viewportWidth / this.natural.width, this.viewportHeight / this.natural.height);
  }

  /** The zoom at which one image pixel covers one device pixel, or null while the sizes are unknown. */
  get actualPixelsZoom(): number | null {
    const fit = this.fitScale;
    return fit === null ? null : 1 / (fit * devicePixelRatio());
  }

  get fitted(): boolean {
    return this.zoom === 1;
  }

  /** "fit", or the zoom in percent of the image's own pixels (100% = 1:1); relative to fit when unknown. */
  get label(): string {
    if (this.fitted) return 'fit';
    const actual = this.actualPixelsZoom;
    return actual === null ? `${Math.round(this.zoom * 100)}% of fit` : `${Math.round((this.zoom / actual) * 100)}%`;
  }

  get atActualPixels(): boolean {
    const actual = this.actualPixelsZoom;
    return actual !== null && Math.abs(this.zoom - actual) < 1e-9;
  }

  private get minZoom(): number {
    return Math.min(1, this.actualPixelsZoom ?? 1);
  }

  private get maxZoom(): number {
    // At least 8× the fitted size, and always 4× beyond 1:1 so a large photo's pixels can be inspected.
    return Math.max(8, 4 * (this.actualPixelsZoom ?? 1));
  }

  /** Size and place of the image, or null while the natural or viewport size is unknown. */
  get box(): ImageBox | null {
    const fit = this.fitScale;
    if (fit === null || !this.natural) return null;
    // At 1:1 use the exact size, so no rounding error makes the browser resample the pixels.
    const scale = this.atActualPixels ? 1 / devicePixelRatio() : fit * this.zoom;
    const width = this.natural.width * scale;
    const height = this.natural.height * scale;
    return {
      width,
      height,
      left: Math.round((this.viewportWidth - width) / 2 + this.offsetX),
      top: Math.round((this.viewportHeight - height) / 2 + this.offsetY),
    };
  }

  /** The CSS transform used until the sizes are known (the image is still loading). */
  get transform(): string {
    return `translate(${this.offsetX}px, ${this.offsetY}px) scale(${this.zoom})`;
  }

  measureImage = (event: Event): void => {
    const image = event.currentTarget as HTMLImageElement;
    if (image.naturalWidth > 0 && image.naturalHeight > 0) this.natural = { width: image.naturalWidth, height: image.naturalHeight };
  };

  resize(width: number, height: number): void {
    this.viewportWidth = width;
    this.viewportHeight = height;
    this.clampOffsets();
  }

  /** Back to fit for a new image; its natural size is measured again when it loads. */
  reset(): void {
    this.zoom = 1;
    this.offsetX = 0;
    this.offsetY = 0;
    this.natural = null;
  }

  /**
   * Sets the zoom, keeping the image point under `anchor` (relative to the viewport centre, default the
   * centre itself) where it is.
   */
  set(next: number, anchor: { x: number; y: number } = { x: 0, y: 0 }): void {
    const previous = this.zoom;
    const zoom = Math.min(this.maxZoom, Math.max(this.minZoom, next));
    this.zoom = zoom;
    if (zoom === 1) {
      this.offsetX = 0;
      this.offsetY = 0;
      return;
    }
    const ratio = zoom / previous;
    this.offsetX = anchor.x - (anchor.x - this.offsetX) * ratio;
    this.offsetY = anchor.y - (anchor.y - this.offsetY) * ratio;
    this.clampOffsets();
  }

  /** Steps stop at fit and at 1:1 on the way, so both are reached exactly from the keyboard. */
  private stepTo(factor: number, anchor?: { x: number; y: number }): void {
    const next = this.zoom * factor;
    const stops = [1, this.actualPixelsZoom ?? 1];
    const crossed = stops.filter((stop) => (factor > 1 ? this.zoom < stop - 1e-9 && next > stop + 1e-9 : this.zoom > stop + 1e-9 && next < stop - 1e-9));
    const target = crossed.length === 0 ? next : factor > 1 ? Math.min(...crossed) : Math.max(...crossed);
    this.set(target, anchor);
  }

  zoomIn = (): void => this.each((view) => view.stepTo(step));
  zoomOut = (): void => this.each((view) => view.stepTo(1 / step));
  fit = (): void => this.each((view) => view.set(1));
  actualPixels = (): void =>
    this.each((view) => {
      const actual = view.actualPixelsZoom;
      if (actual !== null) view.set(actual);
    });

  /** Key → action for `+`/`=`, `-` and (unless `withFit` is false) `0`, to merge into a view's own key map. */
  keys(withFit = true): Record<string, () => void> {
    return { '+': this.zoomIn, '=': this.zoomIn, '-': this.zoomOut, ...(withFit ? { '0': this.fit } : {}) };
  }

  wheel = (event: WheelEvent): void => {
    event.preventDefault();
    const bounds = (event.currentTarget as HTMLElement).getBoundingClientRect();
    const anchor = { x: event.clientX - bounds.left - bounds.width / 2, y: event.clientY - bounds.top - bounds.height / 2 };
    this.each((view) => view.stepTo(event.deltaY < 0 ? wheelStep : 1 / wheelStep, anchor));
  };

  pointerDown = (event: PointerEvent): void => {
    if (this.zoom !== 1) {
      this.lastPointer = { x: event.clientX, y: event.clientY };
      (event.currentTarget as HTMLElement).setPointerCapture(event.pointerId);
    }
  };

  pointerMove = (event: PointerEvent): void => {
    if (!this.lastPointer) return;
    const dx = event.clientX - this.lastPointer.x;
    const dy = event.clientY - this.lastPointer.y;
    this.lastPointer = { x: event.clientX, y: event.clientY };
    this.each((view) => {
      if (view.zoom === 1) return;
      view.offsetX += dx;
      view.offsetY += dy;
      view.clampOffsets();
    });
  };

  pointerUp = (): void => {
    this.lastPointer = null;
  };

  private each(action: (view: ZoomPan) => void): void {
    for (const view of this.group) action(view);
  }

  /** Keeps some of the image in view: it may not be dragged further than its overhang past the viewport. */
  private clampOffsets(): void {
    const fit = this.fitScale;
    if (fit === null || !this.natural) return;
    const scale = fit * this.zoom;
    const limitX = Math.max(0, (this.natural.width * scale - this.viewportWidth) / 2);
    const limitY = Math.max(0, (this.natural.height * scale - this.viewportHeight) / 2);
    this.offsetX = Math.min(limitX, Math.max(-limitX, this.offsetX));
    this.offsetY = Math.min(limitY, Math.max(-limitY, this.offsetY));
  }
}

function devicePixelRatio(): number {
  return typeof window === 'undefined' ? 1 : window.devicePixelRatio || 1;
}
