import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Zip, ZipDeflate } from 'fflate';
import { webContentSecurityPolicy } from '../common/content-security-policy.js';
import { isCallName } from '../common/contract.js';
import { DermError, serializeError, type ErrorCode } from '../common/errors.js';
import type { AppApiHost } from '../core/app-api/transport/app-api-host.js';
import { mediaBody, openMediaStream } from '../core/media/media-file.js';

/**
 * The local web mode's HTTP bridge: the built renderer, the contract at POST /api/<call>, app events as
 * server-sent events at /api/events, thumbnails and images at /media/<kind>/<image id> (resolved from
 * the image row, never from a path in the request) and browser uploads at POST /upload. Every request
 * needs the per-run token (header or cookie; `?token=` only on a page load, traded at once for the
 * cookie), and the Host header must name this server, so a web page elsewhere cannot reach the library
 * through the browser.
 */

export const tokenHeader = 'x-dermws-token';
export const maxJsonBytes = 4 * 1024 * 1024;
export const maxUploadBytes = 512 * 1024 * 1024;

const securityHeaders: Record<string, string> = {
  'Content-Security-Policy': webContentSecurityPolicy,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), usb=(), serial=()',
};

const staticTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.webp': 'image/webp',
};

const statusOfCode: Partial<Record<ErrorCode, number>> = {
  'invalid-input': 400,
  unauthorized: 401,
  'not-found': 404,
  conflict: 409,
  'in-use': 409,
  'decode-failed': 422,
  'model-invalid': 422,
  'embeddings-invalid': 422,
};

export interface WebBridgeOptions {
  api: AppApiHost;
  /** The built renderer (dist-renderer/). */
  staticFolder: string;
  uploadsFolder: string;
  hostname?: string;
  port?: number;
  /** Fixed token for tests; a random 32-byte token otherwise. */
  token?: string;
}

export interface WebBridge {
  readonly origin: string;
  /** The URL to open, token included. */
  readonly url: string;
  readonly token: string;
  readonly port: number;
  close(): Promise<void>;
}

/** No contract input comes near this; a deeper body is refused before parsing and validation recurse into it. */
export const maxJsonDepth = 64;

/**
 * The deepest nesting of arrays and objects in JSON text, counted in one pass outside strings. Run
 * before JSON.parse so that a body of 100,000 brackets is a 400, not a stack overflow in the parser,
 * the validator or the structured clone to the core's worker.
 */
export function jsonNestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === 0x5c) index++;
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (code === 0x5b || code === 0x7b) {
      depth++;
      if (depth > deepest) deepest = depth;
    } else if (code === 0x5d || code === 0x7d) depth--;
  }
  return deepest;
}

/** A browser opening a page of the app: the only request that may carry the token in its URL. */
function isPageLoad(request: http.IncomingMessage, url: URL): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  return !url.pathname.startsWith('/api/') && !url.pathname.startsWith('/media/') && url.pathname !== '/upload';
}

export function isLoopbackHost(hostname: string): boolean {
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '::1' || hostname === '[::1]';
}

function safeEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return undefined;
}

/** Keeps the folder structure of a dropped folder but nothing that could leave the upload folder. */
export function safeUploadPath(name: string): string {
  const parts = name
    .split(/[\\/]+/)
    // eslint-disable-next-line no-control-regex -- control characters are exactly what a file name must not keep
    .map((part) => part.replace(/[\u0000-\u001f<>:"|?*]/g, '_').trim())
    .filter((part) => part.length > 0 && part !== '.' && part !== '..');
  if (parts.length === 0) throw new DermError('invalid-input', `The upload name "${name}" has no usable file name.`, { field: 'name' });
  return path.join(...parts.map((part) => part.slice(0, 200)));
}

export async function startWebBridge(options: WebBridgeOptions): Promise<WebBridge> {
  const hostname = options.hostname ?? '127.0.0.1';
  const token = options.token ?? crypto.randomBytes(32).toString('base64url');
  const staticRoot = path.resolve(options.staticFolder);
  const uploadsRoot = path.resolve(options.uploadsFolder);
  fs.mkdirSync(uploadsRoot, { recursive: true });
  const eventStreams = new Set<http.ServerResponse>();
  let port = options.port ?? 0;
  let cookieName = 'dermws_token';

  // Folders written by this run's finished export jobs, by job id: the only folders /download serves,
  // so a download never names a path of its own.
  const finishedExports = new Map<string, { folder: string; files: string[] }>();
  const unsubscribe = options.api.subscribe((event) => {
    if (event.type === 'job-finished' && event.job.kind === 'export' && (event.job.state === 'success' || event.job.state === 'partial')) {
      const result = event.job.result as { folder?: unknown; files?: unknown } | undefined;
      if (typeof result?.folder === 'string' && Array.isArray(result.files)) {
        const names = result.files.map((file) => (file as { name?: unknown }).name).filter((name): name is string => typeof name === 'string');
        finishedExports.set(event.job.id, { folder: result.folder, files: [...names, 'manifest.json'] });
      }
    }
    const frame = `data: ${JSON.stringify(event)}\n\n`;
    for (const stream of eventStreams) stream.write(frame);
  });

  const sendJson = (response: http.ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { ...securityHeaders, 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
    response.end(JSON.stringify(body));
  };
  const sendError = (response: http.ServerResponse, error: unknown) => {
    const serialized = serializeError(error);
    sendJson(response, statusOfCode[serialized.code] ?? 500, { error: serialized });
  };

  const allowedHosts = () => new Set([`${hostname}:${port}`, `127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);

  const authorised = (request: http.IncomingMessage, url: URL): 'header' | 'cookie' | 'query' | undefined => {
    const header = request.headers[tokenHeader];
    if (typeof header === 'string' && safeEqual(header, token)) return 'header';
    const cookie = cookieValue(request.headers.cookie, cookieName);
    if (cookie !== undefined && safeEqual(cookie, token)) return 'cookie';
    // `?token=` only opens the page (and is traded for the cookie at once): on API, media or upload URLs
    // it would sit in logs, proxies and the browser's history, so there it counts for nothing.
    const query = url.searchParams.get('token');
    if (query !== null && isPageLoad(request, url) && safeEqual(query, token)) return 'query';
    return undefined;
  };

  async function readBody(request: http.IncomingMessage, limit: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request) {
      size += (chunk as Buffer).length;
      if (size > limit) throw new DermError('invalid-input', `The request body is larger than ${limit} bytes.`);
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  async function handleApi(request: http.IncomingMessage, response: http.ServerResponse, callName: string): Promise<void> {
    if (request.method !== 'POST') {
      sendJson(response, 405, { error: { code: 'invalid-input', message: `Use POST for /api/${callName}.` } });
      return;
    }
    if (!isCallName(callName)) {
      sendJson(response, 404, { error: { code: 'not-found', message: `There is no call named "${callName}".` } });
      return;
    }
    const contentType = request.headers['content-type'] ?? '';
    if (!contentType.startsWith('application/json')) {
      // Only a JSON content type forces a browser to preflight a cross-origin request, so nothing else is accepted.
      sendJson(response, 415, { error: { code: 'invalid-input', message: 'The request body must be JSON (Content-Type: application/json).' } });
      return;
    }
    const body = await readBody(request, maxJsonBytes);
    const text = body.toString('utf8');
    const depth = jsonNestingDepth(text);
    if (depth > maxJsonDepth) {
      throw new DermError(
        'invalid-input',
        `The body of ${callName} is nested ${depth} levels deep; at most ${maxJsonDepth} levels of arrays and objects are accepted.`,
      );
    }
    let input: unknown;
    try {
      input = body.length === 0 ? {} : JSON.parse(text);
    } catch (error) {
      throw new DermError('invalid-input', `The body of ${callName} is not valid JSON: ${(error as Error).message}`);
    }
    const output = await options.api.invoke(callName, input);
    sendJson(response, 200, { output });
  }

  function handleEvents(request: http.IncomingMessage, response: http.ServerResponse): void {
    response.writeHead(200, { ...securityHeaders, 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    response.write(': connected\n\n');
    eventStreams.add(response);
    const keepAlive = setInterval(() => response.write(': keep-alive\n\n'), 15_000);
    request.on('close', () => {
      clearInterval(keepAlive);
      eventStreams.delete(response);
    });
  }

  async function handleMedia(response: http.ServerResponse, kind: string, idText: string): Promise<void> {
    if ((kind !== 'thumbnail' && kind !== 'image') || !/^[1-9][0-9]{0,15}$/.test(idText)) {
      sendJson(response, 404, { error: { code: 'not-found', message: 'Media URLs are /media/thumbnail/<image id> or /media/image/<image id>.' } });
      return;
    }
    const imageId = Number(idText);
    const body = await mediaBody(kind, await options.api.mediaFile(kind, imageId), imageId);
    const stream = 'file' in body ? await openMediaStream(body.file, imageId) : null;
    response.writeHead(200, { ...securityHeaders, 'Content-Type': body.type, 'Cache-Control': 'private, max-age=3600' });
    if (stream) await pipeline(stream, response);
    else if ('bytes' in body) response.end(body.bytes);
  }

  async function handleUpload(request: http.IncomingMessage, response: http.ServerResponse, url: URL): Promise<void> {
    if (request.method !== 'POST') {
      sendJson(response, 405, { error: { code: 'invalid-input', message: 'Use POST for /upload.' } });
      return;
    }
    if (request.headers['content-type'] !== 'application/octet-stream') {
      sendJson(response, 415, { error: { code: 'invalid-input', message: 'Uploads are sent as application/octet-stream.' } });
      return;
    }
    const given = url.searchParams.get('uploadId');
    if (given !== null && !/^[a-f0-9]{32}$/.test(given)) throw new DermError('invalid-input', `"${given}" is not an upload id.`, { field: 'uploadId' });
    const uploadId = given ?? crypto.randomBytes(16).toString('hex');
    const relative = safeUploadPath(url.searchParams.get('name') ?? '');
    const folder = path.join(uploadsRoot, uploadId);
    const target = path.join(folder, relative);
    if (!target.startsWith(folder + path.sep)) throw new DermError('invalid-input', `The upload name "${relative}" leaves the upload folder.`);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    let size = 0;
    const temporary = `${target}.part`;
    try {
      await pipeline(
        request,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            size += chunk.length;
            if (size > maxUploadBytes)
              throw new DermError('invalid-input', `${relative} is larger than the upload limit of ${maxUploadBytes / 1024 / 1024} MB.`);
            yield chunk;
          }
        },
        fs.createWriteStream(temporary),
      );
      fs.renameSync(temporary, target);
    } catch (error) {
      fs.rmSync(temporary, { force: true });
      throw error;
    }
    sendJson(response, 200, { uploadId, name: relative, bytes: size });
  }

  /** One finished export of this run as a .zip, streamed: GET /download/export/<job id>. */
  async function handleDownload(request: http.IncomingMessage, response: http.ServerResponse, jobIdText: string): Promise<void> {
    if (request.method !== 'GET') {
      sendJson(response, 405, { error: { code: 'invalid-input', message: 'Use GET for /download.' } });
      return;
    }
    const exported = finishedExports.get(jobIdText);
    if (!exported) throw new DermError('not-found', `There is no finished export "${jobIdText}" in this run of the server to download.`, { jobId: jobIdText });
    const root = path.resolve(exported.folder);
    const files = [...new Set(exported.files)].filter((name) => {
      const file = path.resolve(root, name);
      // Only regular files inside the export folder, never through a link placed there since.
      return file.startsWith(root + path.sep) && fs.existsSync(file) && fs.lstatSync(file).isFile();
    });
    const archiveName = `${path.basename(root).replace(/[^A-Za-z0-9._-]+/g, '_') || 'export'}.zip`;
    response.writeHead(200, {
      ...securityHeaders,
      'Content-Type': 'application/zip',
      'Content-Disposition': `attachment; filename="${archiveName}"`,
      'Cache-Control': 'no-store',
    });
    const finished = new Promise<void>((resolve, reject) => {
      const zip = new Zip((error, chunk, final) => {
        if (error) {
          reject(error);
          return;
        }
        response.write(chunk);
        if (final) {
          response.end();
          resolve();
        }
      });
      void (async () => {
        for (const name of files) {
          const entry = new ZipDeflate(name.split(path.sep).join('/'), { level: 1 });
          zip.add(entry);
          for await (const chunk of fs.createReadStream(path.join(root, name))) entry.push(chunk as Buffer);
          entry.push(new Uint8Array(0), true);
        }
        zip.end();
      })().catch(reject);
    });
    await finished;
  }

  async function handleStatic(request: http.IncomingMessage, response: http.ServerResponse, url: URL): Promise<void> {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      sendJson(response, 405, { error: { code: 'invalid-input', message: 'Only GET is served here.' } });
      return;
    }
    let relative: string;
    try {
      relative = decodeURIComponent(url.pathname);
    } catch {
      relative = '/';
    }
    if (relative === '/' || relative === '') relative = '/index.html';
    const file = path.resolve(staticRoot, `.${relative}`);
    if (!file.startsWith(staticRoot + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      if (!fs.existsSync(path.join(staticRoot, 'index.html'))) {
        response.writeHead(503, { ...securityHeaders, 'Content-Type': 'text/plain; charset=utf-8' });
        response.end(`The renderer is not built (${staticRoot} has no index.html). Run "npm run build:renderer" and start again.\n`);
        return;
      }
      response.writeHead(404, { ...securityHeaders, 'Content-Type': 'text/plain; charset=utf-8' });
      response.end('Not found.\n');
      return;
    }
    const hashed = relative.startsWith('/assets/');
    response.writeHead(200, {
      ...securityHeaders,
      'Content-Type': staticTypes[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Cache-Control': hashed ? 'private, max-age=31536000, immutable' : 'no-store',
    });
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    await pipeline(fs.createReadStream(file), response);
  }

  const server = http.createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? '/', 'http://bridge.invalid');
      try {
        if (!request.headers.host || (isLoopbackHost(hostname) && !allowedHosts().has(request.headers.host.toLowerCase()))) {
          // A page on another site that resolves its own name to 127.0.0.1 (DNS rebinding) sends its own Host.
          sendJson(response, 421, { error: { code: 'unauthorized', message: 'This server only answers requests addressed to its own loopback address.' } });
          return;
        }
        const how = authorised(request, url);
        if (!how) {
          sendJson(response, 401, {
            error: { code: 'unauthorized', message: 'This request has no valid token. Open the URL that `dermws serve` printed (it contains the token).' },
          });
          return;
        }
        if (how === 'query') {
          // Trade the token in the URL for a cookie and drop it from the address bar and history.
          url.searchParams.delete('token');
          response.writeHead(303, {
            ...securityHeaders,
            'Set-Cookie': `${cookieName}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
            Location: `${url.pathname}${url.search}`,
            'Cache-Control': 'no-store',
          });
          response.end();
          return;
        }
        if (url.pathname === '/api/events') handleEvents(request, response);
        else if (url.pathname.startsWith('/api/')) await handleApi(request, response, url.pathname.slice('/api/'.length));
        else if (url.pathname.startsWith('/media/')) {
          const [, , kind = '', id = ''] = url.pathname.split('/');
          await handleMedia(response, kind, id);
        } else if (url.pathname === '/upload') await handleUpload(request, response, url);
        else if (url.pathname.startsWith('/download/export/')) await handleDownload(request, response, url.pathname.slice('/download/export/'.length));
        else await handleStatic(request, response, url);
      } catch (error) {
        if (response.headersSent) response.destroy();
        else sendError(response, error);
      }
    })();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, hostname, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  cookieName = `dermws_token_${port}`;
  const displayHost = hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
  const origin = `http://${displayHost}:${port}`;
  return {
    origin,
    url: `${origin}/?token=${encodeURIComponent(token)}`,
    token,
    port,
    close: async () => {
      unsubscribe();
      for (const stream of eventStreams) stream.end();
      eventStreams.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}
