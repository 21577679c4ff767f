/* Minimal assertion helpers for the C tests: each failed check prints where
 * and counts; main returns non-zero if any failed. */
#ifndef ITD_T_H
#define ITD_T_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failed, t_checks;
#define CHECK(c) do { t_checks++; if (!(c)) { t_failed++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); } } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); t_checks++; \
    if (!a_ || !b_ || strcmp(a_, b_) != 0) { t_failed++; \
    fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } } while (0)
#define T_DONE() (printf("%d checks, %d failed\n", t_checks, t_failed), t_failed ? 1 : 0)

/* Read a whole file (malloc'd, NUL-terminated) or NULL. */
static char *t_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[n] = 0; if (len) *len = (size_t)n; }
    return b;
}
#endif
