import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { desktopContentSecurityPolicy, webContentSecurityPolicy } from '../../electron/common/content-security-policy.js';
import { defaultWindowState, isRendererUrl, libraryArgument, parseMediaUrl, rendererFile, trustedWindowState } from '../../electron/main/shell-policy.js';

describe('Electron shell policy', () => {
  it('accepts only the renderer’s own documents', () => {
    expect(isRendererUrl('app://renderer/index.html')).toBe(true);
    for (const url of ['https://example.org/', 'file:///etc/passwd', 'app://other/index.html', 'data:text/html,x', 'javascript:alert(1)', 'not a url']) {
      expect(isRendererUrl(url), url).toBe(false);
    }
  });

  it('maps app:// URLs to files inside the renderer folder only', () => {
    const folder = path.resolve('/opt/derm/dist-renderer');
    expect(rendererFile('app://renderer/', folder)).toBe(path.join(folder, 'index.html'));
    expect(rendererFile('app://renderer/assets/index-1.js', folder)).toBe(path.join(folder, 'assets/index-1.js'));
    // The URL parser folds dot segments before the file is resolved, so this stays inside the folder.
    expect(rendererFile('app://renderer/%2e%2e/%2e%2e/etc/passwd', folder)).toBe(path.join(folder, 'etc/passwd'));
    expect(rendererFile('app://renderer/..%2F..%2Fsecret', folder)).toBeUndefined();
    expect(rendererFile('app://elsewhere/index.html', folder)).toBeUndefined();
  });

  it('parses media URLs by kind and image id and nothing else', () => {
    expect(parseMediaUrl('derm-media://thumbnail/12')).toEqual({ kind: 'thumbnail', imageId: 12 });
    expect(parseMediaUrl('derm-media://image/7')).toEqual({ kind: 'image', imageId: 7 });
    for (const url of [
      'derm-media://image/0',
      'derm-media://image/../../etc/passwd',
      'derm-media://file/1',
      'derm-media://image/1?x=/etc',
      'app://renderer/1',
    ]) {
      expect(parseMediaUrl(url), url).toBeUndefined();
    }
  });

  it('keeps a remembered window only where a display still shows it', () => {
    const displays = [{ x: 0, y: 0, width: 1920, height: 1080 }];
    expect(trustedWindowState({ bounds: { x: 100, y: 80, width: 1200, height: 800 }, maximized: true }, displays)).toEqual({
      bounds: { x: 100, y: 80, width: 1200, height: 800 },
      maximized: true,
    });
    const offScreen = trustedWindowState({ bounds: { x: 4000, y: 80, width: 1200, height: 800 }, maximized: false }, displays);
    expect(offScreen.bounds).toEqual({ ...defaultWindowState.bounds, width: 1200, height: 800 });
    expect(trustedWindowState({ bounds: { x: 0, y: 0, width: 'big', height: 800 } }, displays)).toEqual(defaultWindowState);
    expect(trustedWindowState('garbage', displays)).toEqual(defaultWindowState);
  });

  it('reads --library from the command line', () => {
    expect(libraryArgument(['electron', '.', '--library', '/data/lib'])).toBe('/data/lib');
    expect(libraryArgument(['electron', '.', '--library=/data/lib2'])).toBe('/data/lib2');
    expect(libraryArgument(['electron', '.'])).toBeUndefined();
  });

  it('has a CSP without inline scripts, eval or remote origins', () => {
    expect(desktopContentSecurityPolicy).toContain("script-src 'self'");
    expect(desktopContentSecurityPolicy).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    expect(desktopContentSecurityPolicy).toContain("default-src 'none'");
  });

  it('gives the desktop shell and the web mode the same CSP but for the derm-media: image source', () => {
    for (const policy of [desktopContentSecurityPolicy, webContentSecurityPolicy]) {
      expect(policy).toContain("object-src 'none'");
      expect(policy).toContain("frame-ancestors 'none'");
    }
    expect(desktopContentSecurityPolicy).toContain("img-src 'self' derm-media: blob: data:");
    expect(webContentSecurityPolicy).not.toContain('derm-media:');
    expect(desktopContentSecurityPolicy.replace(' derm-media:', '')).toBe(webContentSecurityPolicy);
  });
});
