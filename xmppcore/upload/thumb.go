package upload

import (
	"errors"
	"image"
	"image/color"
	_ "image/gif" // decoders for thumbnails
	"image/jpeg"
	_ "image/png"
	"os"
)

var errNoThumb = errors.New("upload: no thumbnail for this file")

// makeThumb writes a JPEG thumbnail of the image at src (PNG, JPEG or
// GIF) to dst, fitting in thumbSide × thumbSide (never enlarged). Images
// larger than maxThumbPixels are left without one, so a small file that
// declares huge dimensions cannot make the server allocate gigabytes.
func makeThumb(src, dst, contentType string) error {
	switch contentType {
	case "image/png", "image/jpeg", "image/gif":
	default:
		return errNoThumb
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxThumbPixels {
		return errNoThumb
	}
	if _, err := f.Seek(0, 0); err != nil {
		return err
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	err = jpeg.Encode(out, scaleDown(img, thumbSide), &jpeg.Options{Quality: thumbQuality})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

// scaleDown shrinks img to fit in side × side by averaging the source
// pixels under each destination pixel (a box filter, sampling at most
// boxSamples × boxSamples of them, so the cost does not grow with the
// photo), over white (JPEG has no transparency).
func scaleDown(img image.Image, side int) image.Image {
	const boxSamples = 4
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if w > side || h > side {
		if w >= h {
			dw, dh = side, max(1, h*side/w)
		} else {
			dw, dh = max(1, w*side/h), side
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < dh; y++ {
		y0, y1 := b.Min.Y+y*h/dh, b.Min.Y+(y+1)*h/dh
		y1 = max(y1, y0+1)
		for x := 0; x < dw; x++ {
			x0, x1 := b.Min.X+x*w/dw, b.Min.X+(x+1)*w/dw
			x1 = max(x1, x0+1)
			var r, g, bl, n uint64
			sty, stx := max(1, (y1-y0)/boxSamples), max(1, (x1-x0)/boxSamples)
			for sy := y0; sy < y1; sy += sty {
				for sx := x0; sx < x1; sx += stx {
					cr, cg, cb, ca := img.At(sx, sy).RGBA()
					// Composite over white: c + (1-a)·white, 16-bit.
					r += uint64(cr + 0xffff - ca)
					g += uint64(cg + 0xffff - ca)
					bl += uint64(cb + 0xffff - ca)
					n++
				}
			}
			dst.Set(x, y, color.RGBA64{R: uint16(r / n), G: uint16(g / n), B: uint16(bl / n), A: 0xffff})
		}
	}
	return dst
}
