/**
 * The one Content-Security-Policy of the renderer, for the desktop shell (app://) and the web mode
 * alike: only our own scripts, styles, fonts and workers, no plugins, no framing, no form posts. The
 * two differ only in where images may come from: the desktop shell serves them over derm-media:, the
 * web mode from its own origin. The Vite build has no inline script or style, so none is allowed.
 */
function contentSecurityPolicy(imageSources: readonly string[]): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src ${["'self'", ...imageSources, 'blob:', 'data:'].join(' ')}`,
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}

export const desktopContentSecurityPolicy = contentSecurityPolicy(['derm-media:']);
export const webContentSecurityPolicy = contentSecurityPolicy([]);
