/**
 * Zoom (1×–8×) and pan of an image view, driven by buttons, keys, the wheel and pointer drags. The
 * image detail and the side-by-side compare share it; the compare uses one instance for both panes so
 * the same region of each lesion stays side by side.
 */
export class ZoomPan {
  zoom = $state(1);
  offsetX = $state(0);
  offsetY = $state(0);
  private dragStart: { x: number; y: number } | null = null;

  set(next: number): void {
    this.zoom = Math.min(8, Math.max(1, next));
    if (this.zoom === 1) {
      this.offsetX = 0;
      this.offsetY = 0;
    }
  }

  zoomIn = (): void => this.set(this.zoom * 1.5);
  zoomOut = (): void => this.set(this.zoom / 1.5);
  fit = (): void => this.set(1);

  /** Key → action for `+`/`=`, `-` and `0`, to merge into a view's own key map. */
  keys(): Record<string, () => void> {
    return { '+': this.zoomIn, '=': this.zoomIn, '-': this.zoomOut, '0': this.fit };
  }

  /** The CSS transform for the zoomed, panned image. */
  get transform(): string {
    return `translate(${this.offsetX}px, ${this.offsetY}px) scale(${this.zoom})`;
  }

  wheel = (event: WheelEvent): void => {
    event.preventDefault();
    this.set(this.zoom * (event.deltaY < 0 ? 1.2 : 1 / 1.2));
  };

  pointerDown = (event: PointerEvent): void => {
    if (this.zoom > 1) {
      this.dragStart = { x: event.clientX - this.offsetX, y: event.clientY - this.offsetY };
      (event.currentTarget as HTMLElement).setPointerCapture(event.pointerId);
    }
  };

  pointerMove = (event: PointerEvent): void => {
    if (this.dragStart) {
      this.offsetX = event.clientX - this.dragStart.x;
      this.offsetY = event.clientY - this.dragStart.y;
    }
  };

  pointerUp = (): void => {
    this.dragStart = null;
  };
}
