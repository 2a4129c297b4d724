/**
 * A minimal PNG decoder for tests that look at screenshots: 8-bit RGB or RGBA, non-interlaced (what
 * Chromium writes). Returns RGBA pixels.
 */
import { inflateSync } from "node:zlib";

export interface Image {
  readonly width: number;
  readonly height: number;
  /** RGBA, 4 bytes per pixel, row by row. */
  readonly rgba: Uint8Array;
}

export function decodePng(png: Buffer): Image {
  if (png.subarray(0, 8).toString("hex") !== "89504e470d0a1a0a") throw new Error("not a PNG");
  let at = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (at < png.length) {
    const len = png.readUInt32BE(at);
    const type = png.subarray(at + 4, at + 8).toString("ascii");
    const data = png.subarray(at + 8, at + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8];
      const colour = data[9];
      if (depth !== 8 || (colour !== 2 && colour !== 6) || data[12] !== 0) {
        throw new Error(`unsupported PNG: depth ${depth}, colour type ${colour}, interlace ${data[12]}`);
      }
      channels = colour === 6 ? 4 : 3;
    } else if (type === "IDAT") {
      idat.push(data);
    } else if (type === "IEND") {
      break;
    }
    at += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = new Uint8Array(width * height * 4);
  let prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)] ?? 0;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const cur = new Uint8Array(stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? (cur[x - channels] ?? 0) : 0;
      const b = prev[x] ?? 0;
      const c = x >= channels ? (prev[x - channels] ?? 0) : 0;
      const v = line[x] ?? 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      cur[x] = (v + pred) & 0xff;
    }
    for (let x = 0; x < width; x++) {
      for (let k = 0; k < 3; k++) out[(y * width + x) * 4 + k] = cur[x * channels + k] ?? 0;
      out[(y * width + x) * 4 + 3] = channels === 4 ? (cur[x * channels + 3] ?? 255) : 255;
    }
    prev = cur;
  }
  return { width, height, rgba: out };
}

/** How many pixels are near each of `colours` (hex `#rrggbb`, per-channel tolerance `tol`). */
export function countColours(img: Image, colours: readonly string[], tol = 12): Record<string, number> {
  const targets = colours.map((c) => [
    parseInt(c.slice(1, 3), 16),
    parseInt(c.slice(3, 5), 16),
    parseInt(c.slice(5, 7), 16),
  ]);
  const counts: Record<string, number> = Object.fromEntries(colours.map((c) => [c, 0]));
  for (let i = 0; i < img.rgba.length; i += 4) {
    targets.forEach(([r, g, b], k) => {
      if (
        Math.abs((img.rgba[i] ?? 0) - (r ?? 0)) <= tol &&
        Math.abs((img.rgba[i + 1] ?? 0) - (g ?? 0)) <= tol &&
        Math.abs((img.rgba[i + 2] ?? 0) - (b ?? 0)) <= tol
      ) {
        counts[colours[k] as string] = (counts[colours[k] as string] ?? 0) + 1;
      }
    });
  }
  return counts;
}

/** Share of pixels that are not (near) white or the page background. */
export function inkShare(img: Image): number {
  let ink = 0;
  for (let i = 0; i < img.rgba.length; i += 4) {
    if ((img.rgba[i] ?? 0) < 235 || (img.rgba[i + 1] ?? 0) < 235 || (img.rgba[i + 2] ?? 0) < 235) ink++;
  }
  return ink / (img.width * img.height);
}
