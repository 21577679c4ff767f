/* HTTP/1.x wire text (http1.h): response heads fed whole and byte by byte,
 * 1xx answers, the caps at their edges, malformed heads; request bytes. */
#include <stdint.h>
#include "http1.h"
#include "t.h"

typedef struct seen {
    char text[2048]; /* "name=value|" per header */
    int n;
} seen;

static void on_header(void *ud, const char *name, size_t nlen, const char *value, size_t vlen)
{
    seen *s = ud;
    size_t at = strlen(s->text);
    snprintf(s->text + at, sizeof s->text - at, "%.*s=%.*s|", (int)nlen, name, (int)vlen, value);
    s->n++;
}

/* Parse `text` whole; then check that every prefix shorter than the head
 * asks for more (a head is never taken from a part of it). */
static int parse(const char *text, itd_http1_head *h, seen *s, char *why)
{
    size_t len = strlen(text);
    memset(s, 0, sizeof *s);
    int r = itd_http1_parse_head(text, len, NULL, 0, h, on_header, s, why, 96);
    for (size_t k = 0; r == ITD_HTTP1_DONE && k < h->end; k++) {
        itd_http1_head ph;
        char pw[96];
        if (itd_http1_parse_head(text, k, NULL, 0, &ph, NULL, NULL, pw, sizeof pw) != ITD_HTTP1_MORE) {
            fprintf(stderr, "prefix of %zu bytes did not ask for more\n", k);
            return -2;
        }
    }
    return r;
}

static void heads(void)
{
    itd_http1_head h;
    seen s;
    char why[96];
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                     "X-Odd :  spaced value \t\r\nnot a header\r\n: no name\r\n\r\n{}";
    CHECK(parse(ok, &h, &s, why) == ITD_HTTP1_DONE);
    CHECK(h.status == 200 && h.major == 1 && h.minor == 1);
    CHECK(h.end == strlen(ok) - 2);
    CHECK_STR(s.text, "Content-Type=application/json|Content-Length=2|X-Odd=spaced value|");

    /* bare LF line ends, HTTP/1.0, a reason phrase missing */
    CHECK(parse("HTTP/1.0 404\nA: b\n\n", &h, &s, why) == ITD_HTTP1_DONE);
    CHECK(h.status == 404 && h.minor == 0 && h.end == 19);
    CHECK_STR(s.text, "A=b|");

    /* 1xx answers are skipped, their headers unseen; 101 is final */
    CHECK(parse("HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\nHTTP/1.1 102 P\r\n\r\nHTTP/1.1 201 Created\r\nB: 2\r\n\r\n",
                &h, &s, why) == ITD_HTTP1_DONE);
    CHECK(h.status == 201);
    CHECK_STR(s.text, "B=2|");
    CHECK(parse("HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n", &h, &s, why) == ITD_HTTP1_DONE);
    CHECK(h.status == 101);

    /* empty value, value with a colon */
    CHECK(parse("HTTP/1.1 200 OK\r\nE:\r\nU: http://x:1/\r\n\r\n", &h, &s, why) == ITD_HTTP1_DONE);
    CHECK_STR(s.text, "E=|U=http://x:1/|");

    const char *bad[] = { "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1 200 OK\r\n\r\n", "http/1.1 200 OK\r\n\r\n",
                          "ICY 200 OK\r\n\r\n", "HTTP/1.1  200 OK\r\n\r\n", "\r\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(itd_http1_parse_head(bad[i], strlen(bad[i]), NULL, 0, &h, NULL, NULL, why, sizeof why) == ITD_HTTP1_MALFORMED);
        CHECK_STR(why, "malformed status line");
    }
    /* too short to tell yet */
    CHECK(itd_http1_parse_head("HTTP/1.1 2", 10, NULL, 0, &h, NULL, NULL, why, sizeof why) == ITD_HTTP1_MORE);
}

static void caps(void)
{
    itd_http1_limits lim = { 16, 50, 3 };
    itd_http1_head h;
    char why[96];
    /* a line of exactly max_line is taken; one more byte is not */
    const char *edge = "HTTP/1.1 200 OK\r\n0123456789abcdef\r\n\r\n";
    CHECK(itd_http1_parse_head(edge, strlen(edge), &lim, 0, &h, NULL, NULL, why, sizeof why) == ITD_HTTP1_DONE);
    const char *over = "HTTP/1.1 200 OK\r\n0123456789abcdefg\r\n\r\n";
    CHECK(itd_http1_parse_head(over, strlen(over), &lim, 0, &h, NULL, NULL, why, sizeof why) == ITD_HTTP1_MALFORMED);
    CHECK_STR(why, "response header line longer than 16 bytes");
    /* a line without its end yet: refused once it passes the cap (CR allowed for) */
    const char *partial = "HTTP/1.1 200 OK\r\n0123456789abcdef\r";
    CHECK(itd_http1_parse_head(partial, strlen(partial), &lim, 0, &h, NULL, NULL, why, sizeof why) == ITD_HTTP1_MORE);
    const char *partial2 = "HTTP/1.1 200 OK\r\n0123456789abcdefgh";
    CHECK(itd_http1_parse_head(partial2, strlen(partial2), &lim, 0, &h, NULL, NULL, why, sizeof why) == ITD_HTTP1_MALFORMED);
    CHECK_STR(why, "response header line longer than 16 bytes");
    /* the heads in all, 1xx included: lines + 2 each */
    const char *many = "HTTP/1.1 100 C\r\n\r\nHTTP/1.1 100 C\r\n\r\nHTTP/1.1 200 OK\r\na: 1\r\n\r\n";
    CHECK(itd_http1_parse_head(many, strlen(many), &lim, 0, &h, NULL, NULL, why, sizeof why) == ITD_HTTP1_MALFORMED);
    CHECK_STR(why, "response headers larger than 50 bytes");
    lim.max_head = 1000;
    CHECK(itd_http1_parse_head(many, strlen(many), &lim, 0, &h, NULL, NULL, why, sizeof why) == ITD_HTTP1_DONE);
    const char *count = "HTTP/1.1 200 OK\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\n\r\n";
    CHECK(itd_http1_parse_head(count, strlen(count), &lim, 0, &h, NULL, NULL, why, sizeof why) == ITD_HTTP1_MALFORMED);
    CHECK_STR(why, "too many response headers");
    lim.max_headers = 4;
    CHECK(itd_http1_parse_head(count, strlen(count), &lim, 0, &h, NULL, NULL, why, sizeof why) == ITD_HTTP1_DONE);
    /* more to come after complete 1xx heads: they may be dropped, their
     * bytes still count against the cap when the rest is fed again */
    const char *early = "HTTP/1.1 100 C\r\n\r\nHTTP/1.1 20";
    itd_http1_limits roomy = ITD_HTTP1_LIMITS_INIT;
    CHECK(itd_http1_parse_head(early, strlen(early), &roomy, 0, &h, NULL, NULL, why, sizeof why) == ITD_HTTP1_MORE);
    CHECK(h.end == 18 && h.counted == 18);
    const char *rest = "HTTP/1.1 200 OK\r\na: 1\r\n\r\n";
    CHECK(itd_http1_parse_head(rest, strlen(rest), &roomy, h.counted, &h, NULL, NULL, why, sizeof why) == ITD_HTTP1_DONE);
    CHECK(h.status == 200 && h.end == strlen(rest) && h.counted == 18 + 17 + 6 + 2);
    lim.max_head = 40; /* 18 counted before: the rest passes the cap */
    CHECK(itd_http1_parse_head(rest, strlen(rest), &lim, 18, &h, NULL, NULL, why, sizeof why) == ITD_HTTP1_MALFORMED);
    CHECK_STR(why, "response headers larger than 40 bytes");
    /* nothing complete yet: nothing to drop */
    CHECK(itd_http1_parse_head("HTTP/1.1 200 OK\r\nA", 18, &roomy, 5, &h, NULL, NULL, why, sizeof why) == ITD_HTTP1_MORE);
    CHECK(h.end == 0 && h.counted == 5);
    /* the default caps are libcurl's */
    itd_http1_limits d = ITD_HTTP1_LIMITS_INIT;
    CHECK(d.max_line == 102400 && d.max_head == 307200 && d.max_headers == 200);
    /* NUL bytes are bytes; no why buffer is fine */
    const char nul[] = "HTTP/1.1 200 OK\r\nA: x\0y\r\n\r\n";
    CHECK(itd_http1_parse_head(nul, sizeof nul - 1, NULL, 0, &h, NULL, NULL, NULL, 0) == ITD_HTTP1_DONE);
    CHECK(h.end == sizeof nul - 1);
}

static void request(void)
{
    itd_header hs[2] = { { "x-api-key", "k" }, { "accept", "application/json" } };
    itd_request q;
    memset(&q, 0, sizeof q);
    q.method = "GET";
    q.url = "http://127.0.0.1:8080/api/v1/workspace/ws/projects/p/jobs/j?x=1#frag";
    q.headers = hs;
    q.nheaders = 2;
    char buf[512];
    size_t n = itd_http1_request(&q, buf, sizeof buf);
    const char *want = "GET /api/v1/workspace/ws/projects/p/jobs/j?x=1 HTTP/1.1\r\nx-api-key: k\r\n"
                       "accept: application/json\r\nhost: 127.0.0.1:8080\r\n\r\n";
    CHECK(n == strlen(want) && memcmp(buf, want, n) == 0);
    /* too small: the length it needs, the bytes that fit */
    char small[10];
    CHECK(itd_http1_request(&q, small, sizeof small) == n && memcmp(small, want, sizeof small) == 0);
    CHECK(itd_http1_request(&q, NULL, 0) == n);

    q.method = "POST";
    q.url = "https://api.example.test:443";
    q.nheaders = 0;
    q.body = "{}";
    q.body_len = 2;
    n = itd_http1_request(&q, buf, sizeof buf);
    want = "POST / HTTP/1.1\r\nhost: api.example.test\r\ncontent-length: 2\r\n\r\n{}";
    CHECK(n == strlen(want) && memcmp(buf, want, n) == 0);
    q.body = NULL;
    q.body_len = 0;
    q.url = "http://[::1]:80/x";
    n = itd_http1_request(&q, buf, sizeof buf);
    want = "POST /x HTTP/1.1\r\nhost: [::1]\r\ncontent-length: 0\r\n\r\n";
    CHECK(n == strlen(want) && memcmp(buf, want, n) == 0);
    q.method = "DELETE";
    q.url = "http://[::1]:8443/x";
    n = itd_http1_request(&q, buf, sizeof buf);
    want = "DELETE /x HTTP/1.1\r\nhost: [::1]:8443\r\n\r\n";
    CHECK(n == strlen(want) && memcmp(buf, want, n) == 0);
    q.url = "ftp://x/";
    CHECK(itd_http1_request(&q, buf, sizeof buf) == 0);
    q.url = NULL;
    CHECK(itd_http1_request(&q, buf, sizeof buf) == 0);
    CHECK(itd_http1_request(NULL, buf, sizeof buf) == 0);
}

int main(void)
{
    (void)t_slurp;
    heads();
    caps();
    request();
    return T_DONE();
}
