// zlib for Swift: `inflateInit2` is a function-like macro (it passes ZLIB_VERSION and the struct size), which Swift
// cannot import, so it is wrapped here.
#ifndef SLUICE_CZLIB_SHIM_H
#define SLUICE_CZLIB_SHIM_H

#include <zlib.h>

static inline int sluice_inflate_init2(z_streamp stream, int windowBits) { return inflateInit2(stream, windowBits); }

#endif
