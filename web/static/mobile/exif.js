// The GPS position a JPEG carries in its EXIF block (APP1), read on the phone before the photo
// is resized: a canvas copy keeps no EXIF, and a citizen without a location fix may still have
// a photo that knows where it was taken.

const SIZES = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8 };

function rational(view, offset, little) {
  const den = view.getUint32(offset + 4, little);
  return den ? view.getUint32(offset, little) / den : NaN;
}

function entries(view, start, ifd, little) {
  const found = {};
  const count = view.getUint16(start + ifd, little);
  for (let i = 0; i < count; i += 1) {
    const at = start + ifd + 2 + i * 12;
    const tag = view.getUint16(at, little);
    const type = view.getUint16(at + 2, little);
    const n = view.getUint32(at + 4, little);
    const bytes = (SIZES[type] || 1) * n;
    const value = bytes > 4 ? start + view.getUint32(at + 8, little) : at + 8;
    found[tag] = { type, n, value };
  }
  return found;
}

function degrees(view, entry, little) {
  if (!entry || entry.type !== 5 || entry.n < 3) return NaN;
  return rational(view, entry.value, little) + rational(view, entry.value + 8, little) / 60
    + rational(view, entry.value + 16, little) / 3600;
}

/** {lat, lon} from a JPEG's EXIF GPS tags, or null. */
export function gpsFromJpeg(buffer) {
  try {
    const view = new DataView(buffer);
    if (view.getUint16(0) !== 0xffd8) return null;
    let offset = 2;
    while (offset + 4 < view.byteLength) {
      const marker = view.getUint16(offset);
      const size = view.getUint16(offset + 2);
      if (marker === 0xffe1 && view.getUint32(offset + 4) === 0x45786966) { // "Exif"
        const tiff = offset + 10;
        const little = view.getUint16(tiff) === 0x4949;
        const ifd0 = entries(view, tiff, view.getUint32(tiff + 4, little), little);
        if (!ifd0[0x8825]) return null;
        const gpsIfd = view.getUint32(ifd0[0x8825].value, little);
        const gps = entries(view, tiff, gpsIfd, little);
        let lat = degrees(view, gps[2], little);
        let lon = degrees(view, gps[4], little);
        if (!Number.isFinite(lat) || !Number.isFinite(lon)) return null;
        if (gps[1] && String.fromCharCode(view.getUint8(gps[1].value)) === "S") lat = -lat;
        if (gps[3] && String.fromCharCode(view.getUint8(gps[3].value)) === "W") lon = -lon;
        return { lat, lon };
      }
      if ((marker & 0xff00) !== 0xff00) return null;
      offset += 2 + size;
    }
  } catch (_) {
    return null;
  }
  return null;
}
