// The GPS position a photo carries in its EXIF block, read on the phone before the photo is
// resized: a canvas copy keeps no EXIF, and a citizen without a location fix may still have a
// photo that knows where it was taken. exifr's smallest build (vendored, scripts/vendor-assets.sh)
// reads JPEG, HEIC and TIFF.
import { gps } from "/maps/static/vendor/exifr/mini.esm.mjs";

/** {lat, lon} from a photo's EXIF GPS tags, or null. */
export async function gpsFromJpeg(file) {
  try {
    const found = await gps(file);
    if (!found || !Number.isFinite(found.latitude) || !Number.isFinite(found.longitude)) return null;
    return { lat: found.latitude, lon: found.longitude };
  } catch (_) {
    return null;
  }
}
