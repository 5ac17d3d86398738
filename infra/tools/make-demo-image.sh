#!/usr/bin/env bash
# Makes the demo input of the shipped OCR model: one line of English text, black on white, as an
# 8-bit grayscale PNG (enclave/models/demo/line.png, committed; this script documents how it was made).
#   apt-get update && apt-get install -y imagemagick fonts-dejavu-core
#   infra/tools/make-demo-image.sh [TEXT] [OUT]
# The output is deterministic for a given ImageMagick and font version (-strip drops the timestamps).
set -euo pipefail
TEXT="${1:-Confidential inference verified}"
OUT="${2:-$(cd "$(dirname "$0")/../.." && pwd)/enclave/models/demo/line.png}"
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
CONVERT=/usr/bin/convert   # ImageMagick 6 on Debian; /usr/local/bin may hold a non-ImageMagick stand-in
[ -x "$CONVERT" ] || { echo "ImageMagick is not installed: apt-get install -y imagemagick" >&2; exit 1; }
[ -r "$FONT" ] || { echo "DejaVu Sans is not installed: apt-get install -y fonts-dejavu-core" >&2; exit 1; }
"$CONVERT" -background white -fill black -font "$FONT" -pointsize 32 label:"$TEXT" \
  -bordercolor white -border 12x8 \
  -colorspace Gray -depth 8 -strip -define png:color-type=0 -define png:bit-depth=8 \
  -interlace none "PNG:$OUT"
echo "wrote $OUT ($(stat -c %s "$OUT") bytes)"
