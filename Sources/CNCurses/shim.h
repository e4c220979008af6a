// ncursesw for Swift: wide-character API on, and small functions for what Swift cannot import
// (function-like macros, and the stdscr/LINES/COLS globals that Swift 6 rejects as shared mutable state).
#ifndef SLUICE_CNCURSES_SHIM_H
#define SLUICE_CNCURSES_SHIM_H

#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#define NCURSES_WIDECHAR 1

#include <locale.h>
#include <ncursesw/curses.h>

static inline WINDOW *sluice_stdscr(void) { return stdscr; }
static inline int sluice_lines(void) { return LINES; }
static inline int sluice_cols(void) { return COLS; }
static inline int sluice_colors(void) { return COLORS; }
static inline attr_t sluice_color_pair(short pair) { return COLOR_PAIR(pair); }
static inline attr_t sluice_a_normal(void) { return A_NORMAL; }
static inline attr_t sluice_a_bold(void) { return A_BOLD; }
static inline attr_t sluice_a_reverse(void) { return A_REVERSE; }
static inline attr_t sluice_a_underline(void) { return A_UNDERLINE; }
static inline attr_t sluice_a_dim(void) { return A_DIM; }
static inline int sluice_key_resize(void) { return KEY_RESIZE; }
static inline int sluice_key_f(int n) { return KEY_F(n); }

/// Draws a UTF-8 string at (y, x), clipped to `max_columns` terminal cells by ncurses.
static inline int sluice_draw(int y, int x, const char *utf8, int max_bytes, attr_t attributes) {
    attrset((int)attributes);
    int result = mvaddnstr(y, x, utf8, max_bytes);
    attrset(A_NORMAL);
    return result;
}

/// Fills `count` cells from (y, x) with spaces in `attributes` (row backgrounds, selection bars).
static inline void sluice_fill(int y, int x, int count, attr_t attributes) {
    attrset((int)attributes);
    mvhline(y, x, ' ', count);
    attrset(A_NORMAL);
}

#endif
