/* Times libtiff's CCITT codec on raw PBM pages, in memory.
 * usage: libtiff_bench MODE ITERS page.pbm...   MODE: g3:1d g3:2d g4
 * prints: encode_ns decode_ns total_bytes encode_cpu_ns decode_cpu_ns
 * (wall clock, then this process's CPU time, which other load on the
 * machine does not inflate) */
#include <tiffio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { unsigned char *buf; toff_t size, cap, pos; } mem;

static tmsize_t mread(thandle_t h, void *p, tmsize_t n) { mem *m = h; if (m->pos + n > m->size) n = m->size - m->pos; memcpy(p, m->buf + m->pos, n); m->pos += n; return n; }
static tmsize_t mwrite(thandle_t h, void *p, tmsize_t n) {
	mem *m = h;
	if (m->pos + n > m->cap) { m->cap = (m->pos + n) * 2; m->buf = realloc(m->buf, m->cap); }
	memcpy(m->buf + m->pos, p, n); m->pos += n; if (m->pos > m->size) m->size = m->pos; return n;
}
static toff_t mseek(thandle_t h, toff_t off, int whence) {
	mem *m = h;
	if (whence == SEEK_SET) m->pos = off; else if (whence == SEEK_CUR) m->pos += off; else m->pos = m->size + off;
	if (m->pos > m->cap) { m->cap = m->pos * 2; m->buf = realloc(m->buf, m->cap); }
	if (m->pos > m->size) { memset(m->buf + m->size, 0, m->pos - m->size); m->size = m->pos; }
	return m->pos;
}
static int mclose(thandle_t h) { (void)h; return 0; }
static toff_t msize(thandle_t h) { return ((mem *)h)->size; }
static int mmap_(thandle_t h, void **p, toff_t *s) { (void)h; (void)p; (void)s; return 0; }
static void munmap_(thandle_t h, void *p, toff_t s) { (void)h; (void)p; (void)s; }

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec * 1e9 + t.tv_nsec; }

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	const char *mode = argv[1];
	int iters = atoi(argv[2]);
	int npages = argc - 3;
	unsigned char **pix = calloc(npages, sizeof *pix);
	int *w = calloc(npages, sizeof *w), *h = calloc(npages, sizeof *h);
	for (int i = 0; i < npages; i++) {
		FILE *f = fopen(argv[3 + i], "rb");
		if (!f || fscanf(f, "P4 %d %d", &w[i], &h[i]) != 2) return 3;
		fgetc(f);
		size_t n = (size_t)(w[i] + 7) / 8 * h[i];
		pix[i] = malloc(n);
		if (fread(pix[i], 1, n, f) != n) return 4;
		fclose(f);
	}
	TIFFSetWarningHandler(NULL);
	double enc = 0, dec = 0, encCPU = 0, decCPU = 0;
	long bytes = 0;
	mem *files = calloc(npages, sizeof *files);
	for (int it = 0; it < iters; it++) {
		for (int i = 0; i < npages; i++) {
			mem *m = &files[i];
			m->size = m->pos = 0;
			double t0 = now(), c0 = cpu();
			TIFF *t = TIFFClientOpen("mem", "w", m, mread, mwrite, mseek, mclose, msize, mmap_, munmap_);
			TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w[i]);
			TIFFSetField(t, TIFFTAG_IMAGELENGTH, h[i]);
			TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 1);
			TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
			TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE);
			TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, h[i]);
			TIFFSetField(t, TIFFTAG_XRESOLUTION, 204.0);
			TIFFSetField(t, TIFFTAG_YRESOLUTION, 196.0);
			TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
			if (strcmp(mode, "g4") == 0) {
				TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_CCITTFAX4);
			} else {
				TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_CCITTFAX3);
				TIFFSetField(t, TIFFTAG_GROUP3OPTIONS, strcmp(mode, "g3:2d") == 0 ? GROUP3OPT_2DENCODING : 0);
			}
			tmsize_t n = (tmsize_t)(w[i] + 7) / 8 * h[i];
			if (TIFFWriteEncodedStrip(t, 0, pix[i], n) < 0) return 5;
			TIFFClose(t);
			enc += now() - t0;
			encCPU += cpu() - c0;
			m->pos = 0;
			t = TIFFClientOpen("mem", "r", m, mread, mwrite, mseek, mclose, msize, mmap_, munmap_);
			if (it == 0) bytes += TIFFRawStripSize(t, 0);
			unsigned char *out = malloc(n);
			t0 = now(), c0 = cpu();
			if (TIFFReadEncodedStrip(t, 0, out, n) < 0) return 6;
			dec += now() - t0;
			decCPU += cpu() - c0;
			if (memcmp(out, pix[i], n) != 0) return 7;
			free(out);
			TIFFClose(t);
		}
	}
	printf("%.0f %.0f %ld %.0f %.0f\n", enc / iters, dec / iters, bytes, encCPU / iters, decCPU / iters);
	return 0;
}
