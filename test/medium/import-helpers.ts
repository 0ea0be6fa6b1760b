import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { createImportServices } from '../../electron/core/core.js';
import { SettingsRepository } from '../../electron/core/library/settings.repository.js';
import { createTestLibrary } from '../fixtures/library-fixture.js';

/** A test library with the import services wired as createCore wires them. */
export function importTestLibrary() {
  const library = createTestLibrary('dermws-import-');
  const settings = new SettingsRepository(library.db);
  return { library, settings, ...createImportServices(library) };
}

export function tempFolder(prefix = 'dermws-import-src-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Whether this process can still read a file after chmod 000 (root can, so a permission test needs another route). */
export function chmodBlocksReading(folder: string): boolean {
  const probe = path.join(folder, '.permission-probe');
  fs.writeFileSync(probe, 'x');
  fs.chmodSync(probe, 0o000);
  let blocked = false;
  try {
    fs.accessSync(probe, fs.constants.R_OK);
  } catch {
    blocked = true;
  }
  fs.chmodSync(probe, 0o600);
  fs.rmSync(probe);
  return blocked;
}

/**
 * A tiny PNG whose header claims width × height pixels: a decompression bomb as far as any decoder
 * that trusts the header is concerned. Made from a real 1×1 PNG with the IHDR size and CRC rewritten.
 */
export async function pngClaiming(width: number, height: number): Promise<Buffer> {
  const png = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
  const bomb = Buffer.from(png);
  // Signature (8) + length (4) + "IHDR" (4), then width and height as big-endian 32-bit integers.
  bomb.writeUInt32BE(width, 16);
  bomb.writeUInt32BE(height, 20);
  bomb.writeUInt32BE(zlib.crc32(bomb.subarray(12, 29)), 29);
  return bomb;
}

export async function rawToFile(file: string, data: Buffer, width: number, height: number, encode: (image: Sharp) => Sharp): Promise<string> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await encode(sharp(data, { raw: { width, height, channels: 3 } })).toFile(file);
  return file;
}
