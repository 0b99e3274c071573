// The selfie is oriented and scaled down in the browser before it is sent:
// a phone's 12 MP photo becomes a ~200 KB JPEG, which the detector needs no
// more than (its input is 640 px).

export const SELFIE_MAX_SIDE = 1280;

export async function shrink(file: Blob, maxSide = SELFIE_MAX_SIDE): Promise<Blob> {
  let bitmap: ImageBitmap;
  try {
    // EXIF orientation applied by the browser.
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    // A format this browser cannot decode (HEIC on most): the server can.
    return file;
  }
  const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height));
  if (scale === 1 && file.type === "image/jpeg" && file.size < 1_500_000) {
    bitmap.close();
    return file;
  }
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  const ctx = canvas.getContext("2d");
  if (!ctx) return file;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise<Blob | null>((resolve) =>
    canvas.toBlob(resolve, "image/jpeg", 0.9),
  );
  return blob ?? file;
}
