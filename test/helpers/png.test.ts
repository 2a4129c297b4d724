/** The screenshot decoder against PNGs made here with every filter type. */
import { deflateSync } from "node:zlib";
import { countColours, decodePng, inkShare } from "./png";

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, Buffer.from(type, "ascii"), data, Buffer.alloc(4)]);
}

/** A width x height RGB image, row y filtered with filter type y % 5 (the decoder ignores CRCs). */
function encode(
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number],
): Buffer {
  const rows: Buffer[] = [];
  let prev = Buffer.alloc(width * 3);
  for (let y = 0; y < height; y++) {
    const cur = Buffer.alloc(width * 3);
    for (let x = 0; x < width; x++) cur.set(pixel(x, y), x * 3);
    const filter = y % 5;
    const line = Buffer.alloc(width * 3);
    for (let i = 0; i < line.length; i++) {
      const a = i >= 3 ? (cur[i - 3] ?? 0) : 0;
      const b = prev[i] ?? 0;
      const c = i >= 3 ? (prev[i - 3] ?? 0) : 0;
      const p = a + b - c;
      const paeth =
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
          ? a
          : Math.abs(p - b) <= Math.abs(p - c)
            ? b
            : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][filter] ?? 0;
      line[i] = ((cur[i] ?? 0) - pred) & 0xff;
    }
    rows.push(Buffer.from([filter]), line);
    prev = cur;
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from("89504e470d0a1a0a", "hex"),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

test("decodes every filter type exactly", () => {
  const px = (x: number, y: number): [number, number, number] => [
    (x * 37 + y) & 255,
    (y * 91) & 255,
    (x * y) & 255,
  ];
  const img = decodePng(encode(13, 11, px));
  expect([img.width, img.height]).toEqual([13, 11]);
  for (let y = 0; y < 11; y++)
    for (let x = 0; x < 13; x++)
      expect([...img.rgba.subarray((y * 13 + x) * 4, (y * 13 + x) * 4 + 3)]).toEqual(px(x, y));
});

test("counts colours and ink", () => {
  const img = decodePng(encode(10, 10, (x) => (x < 3 ? [46, 125, 50] : [255, 255, 255])));
  expect(countColours(img, ["#2e7d32", "#c62828"])).toEqual({ "#2e7d32": 30, "#c62828": 0 });
  expect(inkShare(img)).toBeCloseTo(0.3);
});
