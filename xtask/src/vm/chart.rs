//! The benchmark's chart (README, docs/bench.png): one horizontal bar per variant, the median
//! time of one run, its bare fork+exec part in grey and its overhead over bare in colour.
//!
//! Drawn from the `bench-chart key=value...` line tests/vm/bench.sh prints, with no crate: a
//! 5x7 bitmap font (upper case; labels are upper-cased), an indexed-colour PNG, and a small
//! deflate encoder (fixed Huffman codes; runs and repeated rows as its only matches, which is
//! what a flat chart is made of).
use anyhow::{bail, Context as _, Result};

/// The line bench.sh ends with.
pub const PREFIX: &str = "bench-chart ";

/// The bars, top to bottom: (key in the line, label, overhead colour).
const BARS: [(&str, &str, u8); 5] = [
    ("bare", "bare exec", GREY),
    ("floor", "floor", FLOOR),
    ("warm", "vrfexec warm", VRFEXEC),
    ("cold", "vrfexec cold", VRFEXEC),
    ("ipvrf", "ip vrf exec", IP),
];

/// Palette indices.
const WHITE: u8 = 0;
const INK: u8 = 1;
const GREY: u8 = 2;
const FLOOR: u8 = 3;
const VRFEXEC: u8 = 4;
const IP: u8 = 5;
const PALETTE: [[u8; 3]; 6] = [
    [255, 255, 255],
    [34, 34, 34],
    [200, 200, 200],
    [110, 110, 110],
    [40, 105, 180],
    [215, 120, 40],
];

/// The numbers from the bench: medians in ms, and what they were measured on.
#[derive(Debug, PartialEq)]
pub struct Numbers {
    pub kernel: String,
    pub runs: String,
    /// Median ms per run, in [`BARS`] order.
    pub medians: [f64; 5],
}

impl Numbers {
    /// Parses `bench-chart kernel=K runs=N bare=MS floor=MS warm=MS cold=MS ipvrf=MS`.
    pub fn parse(line: &str) -> Result<Self> {
        let rest = line
            .trim()
            .strip_prefix(PREFIX.trim_end())
            .with_context(|| format!("not a bench-chart line: {line}"))?;
        let mut kernel = String::new();
        let mut runs = String::new();
        let mut medians = [None; 5];
        for pair in rest.split_whitespace() {
            let (key, value) = pair
                .split_once('=')
                .with_context(|| format!("bench-chart: `{pair}` is not key=value"))?;
            match key {
                "kernel" => value.clone_into(&mut kernel),
                "runs" => value.clone_into(&mut runs),
                _ => {
                    let Some(slot) = BARS.iter().position(|(k, _, _)| *k == key) else {
                        bail!("bench-chart: unknown key `{key}`");
                    };
                    let ms: f64 = value
                        .parse()
                        .with_context(|| format!("bench-chart: `{pair}` is not a number"))?;
                    if !ms.is_finite() || ms < 0.0 {
                        bail!("bench-chart: `{pair}` is not a time");
                    }
                    medians[slot] = Some(ms);
                }
            }
        }
        let mut out = [0.0; 5];
        for (i, m) in medians.iter().enumerate() {
            out[i] = m.with_context(|| format!("bench-chart: no {}=", BARS[i].0))?;
        }
        Ok(Self {
            kernel,
            runs,
            medians: out,
        })
    }
}

/// Glyph cell: 5x7 pixels, drawn at [`SCALE`], advancing 6 columns.
const SCALE: usize = 2;
const ADVANCE: usize = 6 * SCALE;
const TEXT_H: usize = 7 * SCALE;

const WIDTH: usize = 760;
const PAD: usize = 16;
const TOP: usize = 76;
const ROW: usize = 36;
const BAR_H: usize = 24;

/// The chart as a PNG file.
pub fn render(n: &Numbers) -> Vec<u8> {
    let height = TOP + BARS.len() * ROW + 2 * TEXT_H + 8;
    let mut img = Canvas::new(WIDTH, height);
    img.text(
        PAD,
        12,
        "start-up cost of one run, median ms (qemu tcg)",
        INK,
    );
    // Legend: the grey part is bare fork+exec, the coloured part the overhead over it.
    img.rect(PAD, 40, TEXT_H, TEXT_H, GREY);
    img.text(PAD + TEXT_H + 6, 40, "bare fork+exec", INK);
    let mut x = PAD + TEXT_H + 6 + 15 * ADVANCE + 10;
    for colour in [FLOOR, VRFEXEC, IP] {
        img.rect(x, 40, TEXT_H, TEXT_H, colour);
        x += TEXT_H + 2;
    }
    img.text(x + 4, 40, "overhead over bare", INK);

    let label_w = BARS.iter().map(|(_, l, _)| l.len()).max().unwrap_or(0) * ADVANCE;
    let x0 = PAD + label_w + ADVANCE;
    // Room on the right for the longest value, "999.9 (+999.9)".
    let max_bar = WIDTH - x0 - 8 - 14 * ADVANCE - PAD;
    let longest = n.medians.iter().copied().fold(0.0_f64, f64::max);
    let scale = if longest > 0.0 {
        max_bar as f64 / longest
    } else {
        0.0
    };
    let px = |ms: f64| ((ms * scale).round() as usize).min(max_bar);
    let bare = n.medians[0];
    for (i, ((_, label, colour), ms)) in BARS.iter().zip(n.medians).enumerate() {
        let y = TOP + i * ROW;
        let text_y = y + (BAR_H - TEXT_H) / 2;
        img.text(PAD, text_y, label, INK);
        let total = px(ms);
        let grey = px(bare.min(ms));
        img.rect(x0, y, grey, BAR_H, GREY);
        img.rect(x0 + grey, y, total - grey, BAR_H, *colour);
        let value = if i == 0 {
            format!("{ms:.1}")
        } else {
            format!("{ms:.1} (+{:.1})", ms - bare)
        };
        img.text(x0 + total + 8, text_y, &value, INK);
    }
    let foot = format!(
        "linux {}, {} runs each, cargo xtask bench",
        n.kernel, n.runs
    );
    img.text(PAD, TOP + BARS.len() * ROW + 6, &foot, GREY_TEXT);
    img.png()
}

/// The footer's colour: the floor's grey, legible on white.
const GREY_TEXT: u8 = FLOOR;

struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![WHITE; width * height],
        }
    }

    fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, colour: u8) {
        for row in y..(y + h).min(self.height) {
            let start = row * self.width;
            for col in x..(x + w).min(self.width) {
                self.pixels[start + col] = colour;
            }
        }
    }

    fn text(&mut self, x: usize, y: usize, text: &str, colour: u8) {
        for (i, c) in text.chars().enumerate() {
            let rows = glyph(c.to_ascii_uppercase());
            let gx = x + i * ADVANCE;
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        self.rect(gx + col * SCALE, y + r * SCALE, SCALE, SCALE, colour);
                    }
                }
            }
        }
    }

    /// An 8-bit indexed PNG: IHDR, PLTE, one IDAT, IEND.
    fn png(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity((self.width + 1) * self.height);
        for row in self.pixels.chunks(self.width) {
            raw.push(0); // filter: none
            raw.extend_from_slice(row);
        }
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&u32_of(self.width).to_be_bytes());
        ihdr.extend_from_slice(&u32_of(self.height).to_be_bytes());
        ihdr.extend_from_slice(&[8, 3, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"PLTE", &PALETTE.concat());
        chunk(&mut out, b"IDAT", &zlib(&raw, self.width + 1));
        chunk(&mut out, b"IEND", &[]);
        out
    }
}

/// The chart's sizes are small constants: a u32 always holds them.
fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32_of(data.len()).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// zlib stream of `data`: one deflate block with the fixed Huffman codes (RFC 1951 3.2.6).
/// Matches are looked for only at distance 1 (runs) and `stride` (the row above).
fn zlib(data: &[u8], stride: usize) -> Vec<u8> {
    let mut bits = Bits::default();
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE 01: fixed codes
    let mut i = 0;
    while i < data.len() {
        let mut best = (0, 0);
        for dist in [1, stride] {
            if dist == 0 || dist > i || dist > 32_768 {
                continue;
            }
            let len = (0..258.min(data.len() - i))
                .take_while(|k| data[i + k] == data[i + k - dist])
                .count();
            if len > best.0 {
                best = (len, dist);
            }
        }
        if best.0 >= 3 {
            bits.length(best.0);
            bits.distance(best.1);
            i += best.0;
        } else {
            bits.literal(u16::from(data[i]));
            i += 1;
        }
    }
    bits.literal(256); // end of block
    let mut out = vec![0x78, 0x01];
    out.extend_from_slice(&bits.finish());
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// Deflate's bit order: values LSB first, Huffman codes MSB first.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, count: u32) {
        for k in 0..count {
            self.acc |= ((value >> k) & 1) << self.n;
            self.n += 1;
            if self.n == 8 {
                self.out.push((self.acc & 0xff) as u8);
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    fn code(&mut self, code: u32, len: u32) {
        for k in (0..len).rev() {
            self.put((code >> k) & 1, 1);
        }
    }

    /// A literal/length symbol (0..=285) in the fixed code.
    fn literal(&mut self, sym: u16) {
        let sym = u32::from(sym);
        match sym {
            0..=143 => self.code(0x30 + sym, 8),
            144..=255 => self.code(0x190 + sym - 144, 9),
            256..=279 => self.code(sym - 256, 7),
            _ => self.code(0xc0 + sym - 280, 8),
        }
    }

    fn length(&mut self, len: usize) {
        let len = u16::try_from(len).unwrap_or(258);
        let i = LENGTH_BASE.iter().rposition(|b| *b <= len).unwrap_or(0);
        self.literal(257 + i as u16);
        self.put(u32::from(len - LENGTH_BASE[i]), u32::from(LENGTH_EXTRA[i]));
    }

    fn distance(&mut self, dist: usize) {
        let dist = u16::try_from(dist).unwrap_or(1);
        let i = DIST_BASE.iter().rposition(|b| *b <= dist).unwrap_or(0);
        self.code(i as u32, 5);
        self.put(u32::from(dist - DIST_BASE[i]), u32::from(DIST_EXTRA[i]));
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push((self.acc & 0xff) as u8);
        }
        self.out
    }
}

/// 5x7 glyphs, one byte per row, bit 4 the leftmost column; unknown characters are blank.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
        '1' => [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        '2' => [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        '3' => [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
        '4' => [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
        '5' => [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
        '6' => [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
        '7' => [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
        '9' => [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
        'A' => [0x0e, 0x11, 0x11, 0x11, 0x1f, 0x11, 0x11],
        'B' => [0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e],
        'C' => [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e],
        'D' => [0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c],
        'E' => [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f],
        'F' => [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10],
        'G' => [0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f],
        'H' => [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
        'I' => [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f],
        'M' => [0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
        'P' => [0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10],
        'Q' => [0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d],
        'R' => [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11],
        'S' => [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e],
        'T' => [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a],
        'X' => [0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04],
        'Z' => [0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08],
        '+' => [0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00],
        '-' => [0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        ':' => [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        '=' => [0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00],
        _ => [0; 7],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "bench-chart kernel=6.1.0-28-amd64 runs=200 bare=60.5 floor=80.25 \
                        warm=120.0 cold=130.0 ipvrf=190.0";

    #[test]
    fn the_line_is_parsed() {
        let n = Numbers::parse(LINE).ok();
        assert_eq!(
            n,
            Some(Numbers {
                kernel: "6.1.0-28-amd64".into(),
                runs: "200".into(),
                medians: [60.5, 80.25, 120.0, 130.0, 190.0],
            })
        );
    }

    #[test]
    fn incomplete_or_odd_lines_are_refused() {
        for bad in [
            "bench-chart bare=1 floor=2 warm=3 cold=4",
            "bench-chart bare=1 floor=2 warm=3 cold=4 ipvrf=x",
            "bench-chart bare=1 floor=2 warm=3 cold=4 ipvrf=-1",
            "bench-chart bare=1 floor=2 warm=3 cold=4 ipvrf=5 other=6",
            "bench-chart bare=1 floor=2 warm=3 cold=4 ipvrf",
            "bench bare=1 floor=2 warm=3 cold=4 ipvrf=5",
        ] {
            assert!(Numbers::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checksums() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    /// Inflates a fixed-Huffman block as RFC 1951 decodes it: the encoder's own check.
    fn inflate_fixed(data: &[u8]) -> Vec<u8> {
        let mut pos = 0usize;
        let mut bit = |n: u32| -> u32 {
            let mut v = 0;
            for k in 0..n {
                let b = (data[pos / 8] >> (pos % 8)) & 1;
                v |= u32::from(b) << k;
                pos += 1;
            }
            v
        };
        assert_eq!(bit(3), 0b011, "BFINAL and fixed codes");
        let mut out: Vec<u8> = Vec::new();
        loop {
            // Read a fixed literal/length code MSB first: 7, 8 or 9 bits.
            let mut code = 0u32;
            for _ in 0..7 {
                code = (code << 1) | bit(1);
            }
            let sym = if code <= 0x17 {
                256 + code
            } else {
                code = (code << 1) | bit(1);
                if (0x30..=0xbf).contains(&code) {
                    code - 0x30
                } else if (0xc0..=0xc7).contains(&code) {
                    280 + code - 0xc0
                } else {
                    code = (code << 1) | bit(1);
                    144 + code - 0x190
                }
            };
            match sym {
                0..=255 => out.push(sym as u8),
                256 => return out,
                _ => {
                    let i = (sym - 257) as usize;
                    let len =
                        usize::from(LENGTH_BASE[i]) + bit(u32::from(LENGTH_EXTRA[i])) as usize;
                    let mut d = 0u32;
                    for _ in 0..5 {
                        d = (d << 1) | bit(1);
                    }
                    let d = d as usize;
                    let dist = usize::from(DIST_BASE[d]) + bit(u32::from(DIST_EXTRA[d])) as usize;
                    for _ in 0..len {
                        let byte = out[out.len() - dist];
                        out.push(byte);
                    }
                }
            }
        }
    }

    #[test]
    fn deflate_round_trips() {
        let mut data = Vec::new();
        for row in 0..50u8 {
            data.push(0);
            data.extend((0..300u16).map(|x| if x < 40 + u16::from(row) { 2 } else { 0 }));
            data.extend([1, 2, 3, 255, 144, 143, 7]);
        }
        let stream = zlib(&data, 308);
        assert_eq!(&stream[..2], &[0x78, 0x01]);
        let body = &stream[2..stream.len() - 4];
        assert_eq!(inflate_fixed(body), data);
        assert_eq!(stream[stream.len() - 4..], adler32(&data).to_be_bytes());
        assert!(stream.len() < data.len() / 10, "{} bytes", stream.len());
    }

    #[test]
    fn the_chart_is_a_png_with_every_bar() {
        let n = Numbers::parse(LINE).ok();
        let png = n.as_ref().map(render).unwrap_or_default();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(&png[16..20], &u32_of(WIDTH).to_be_bytes());
        assert!(png.ends_with(&[0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]));
    }
}
