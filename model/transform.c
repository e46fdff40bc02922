/* Layout transforms (model/transform.h). */
#include "model/transform.h"

#include <string.h>

#include "format/btz.h"

static const char *const names[] = { "none", "swap16", "green" };

const char *btz_transform_name(unsigned t)
{
	return t <= BTZ_TRANSFORM_MAX ? names[t] : NULL;
}

int btz_transform_parse(const char *name)
{
	for (unsigned t = 0; t <= BTZ_TRANSFORM_MAX; t++)
		if (strcmp(name, names[t]) == 0)
			return (int)t;
	return -1;
}

static size_t transform_unit(unsigned t)
{
	switch (t) {
	case BTZ_TRANSFORM_SWAP16: return 2;
	case BTZ_TRANSFORM_GREEN: return 3;
	default: return 1;
	}
}

size_t btz_modality_unit(unsigned modality)
{
	switch (modality) {
	case BTZ_MOD_IMAGE: return 3;
	case BTZ_MOD_AUDIO: return 2;
	default: return 1;
	}
}

size_t btz_window_unit(unsigned modality, unsigned transform)
{
	size_t m = btz_modality_unit(modality), t = transform_unit(transform);

	return m > t ? m : t;
}

static void swap16(uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2) {
		uint8_t t = p[i];

		p[i] = p[i + 1];
		p[i + 1] = t;
	}
}

void btz_transform_forward(unsigned t, uint8_t *p, size_t n)
{
	if (t == BTZ_TRANSFORM_SWAP16) {
		swap16(p, n);
	} else if (t == BTZ_TRANSFORM_GREEN) {
		for (size_t i = 0; i + 2 < n; i += 3) {
			uint8_t r = p[i], g = p[i + 1], b = p[i + 2];

			p[i] = g;
			p[i + 1] = (uint8_t)(r - g);
			p[i + 2] = (uint8_t)(b - g);
		}
	}
}

void btz_transform_inverse(unsigned t, uint8_t *p, size_t n)
{
	if (t == BTZ_TRANSFORM_SWAP16) {
		swap16(p, n);
	} else if (t == BTZ_TRANSFORM_GREEN) {
		for (size_t i = 0; i + 2 < n; i += 3) {
			uint8_t g = p[i];

			p[i] = (uint8_t)(p[i + 1] + g);
			p[i + 1] = g;
			p[i + 2] = (uint8_t)(p[i + 2] + g);
		}
	}
}
