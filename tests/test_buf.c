/* The one growable buffer (buf.h): growth, caller storage moving to the
 * heap, printf, take, clear, and the sticky failure flag. */
#include <stdint.h>
#include "buf.h"
#include "t.h"

int main(void)
{
    (void)t_slurp;
    itd_buf b = ITD_BUF_INIT;
    CHECK(itd_buf_put(&b, "ab", 2) == 0 && b.n == 2 && strcmp(b.p, "ab") == 0);
    for (int i = 0; i < 1000; i++) CHECK(itd_buf_putc(&b, (char)('0' + i % 10)) == 0);
    CHECK(b.n == 1002 && b.cap > 1002 && b.p[1002] == 0 && b.p[2] == '0' && b.p[1001] == '9');
    CHECK(itd_buf_printf(&b, "|%d|%s|", 42, "x") == 0);
    CHECK(b.n == 1008 && strcmp(b.p + 1002, "|42|x|") == 0);
    /* a printf longer than the room left grows in one go */
    char big[3000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK(itd_buf_printf(&b, "%s", big) == 0 && b.n == 1008 + 2999 && b.p[b.n] == 0);
    itd_buf_clear(&b);
    CHECK(b.n == 0 && b.p && b.p[0] == 0 && b.cap >= 4007);
    itd_buf_puts(&b, "kept");
    char *s = itd_buf_take(&b);
    CHECK_STR(s, "kept");
    CHECK(b.p == NULL && b.n == 0 && b.cap == 0);
    free(s);
    itd_buf_free(&b); /* after take: nothing */

    /* nothing written: take gives "" */
    s = itd_buf_take(&b);
    CHECK_STR(s, "");
    free(s);

    /* caller storage, then the heap; wiped storage stays zero */
    char stack[8];
    itd_buf w;
    itd_buf_init_with(&w, stack, sizeof stack, 1);
    CHECK(itd_buf_puts(&w, "secret") == 0 && w.p == stack && w.borrowed);
    CHECK(itd_buf_puts(&w, "-and-more") == 0 && w.p != stack && !w.borrowed);
    CHECK_STR(w.p, "secret-and-more");
    int zero = 1;
    for (size_t i = 0; i < sizeof stack; i++) zero = zero && stack[i] == 0;
    CHECK(zero);
    itd_buf_free(&w);
    CHECK(w.p == NULL);
    itd_buf_init_with(&w, stack, sizeof stack, 0);
    itd_buf_puts(&w, "abc");
    s = itd_buf_take(&w); /* a heap copy, never the caller's storage */
    CHECK(s != stack);
    CHECK_STR(s, "abc");
    free(s);

    /* a failure sticks: every write refused, take gives NULL */
    itd_buf f = ITD_BUF_INIT;
    itd_buf_puts(&f, "x");
    CHECK(itd_buf_reserve(&f, SIZE_MAX - 1) == -1 && f.oom);
    CHECK(itd_buf_puts(&f, "y") == -1 && itd_buf_putc(&f, 'z') == -1 && itd_buf_printf(&f, "%d", 1) == -1);
    CHECK_STR(f.p, "x");
    CHECK(itd_buf_take(&f) == NULL && f.p == NULL);
    return T_DONE();
}
