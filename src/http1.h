/*
 * http1.h - HTTP/1.x wire text for a transport that moves the bytes itself
 * (the nginx one, on cosockets): a response head parsed from the bytes
 * received so far, and a request as the bytes to write.  No I/O and no
 * allocation: the caller feeds what it has, and hears "complete", "more" or
 * "malformed".  libcurl does both by itself.
 */
#ifndef ITD_HTTP1_H
#define ITD_HTTP1_H

#include <stddef.h>
#include "protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a head may take, as libcurl caps it: one line (its
 * CURL_MAX_HTTP_HEADER) and all lines of the heads of one response
 * (1xx answers included), and a count of header lines per head. */
typedef struct itd_http1_limits {
    size_t max_line;
    size_t max_head;
    size_t max_headers;
} itd_http1_limits;
#define ITD_HTTP1_LIMITS_INIT { 100 * 1024, 300 * 1024, 200 }

typedef struct itd_http1_head {
    int status;     /* of the final answer (1xx ones before it are skipped, 101 is final) */
    int major, minor;
    /* DONE: the bytes the heads took, their blank lines included (the body
     * starts here).  MORE: the bytes of the complete 1xx heads at the start,
     * which the caller may drop before it feeds the rest again. */
    size_t end;
    size_t counted; /* head bytes counted against max_head so far, those dropped included */
} itd_http1_head;

/* Each header line of the final head that reads "name: value": the name
 * (no white space or ':' in it; case as sent) and the value without the
 * white space around it.  Lines of another shape are skipped. */
typedef void (*itd_http1_header_fn)(void *ud, const char *name, size_t nlen, const char *value, size_t vlen);

enum { ITD_HTTP1_MALFORMED = -1, ITD_HTTP1_MORE = 0, ITD_HTTP1_DONE = 1 };

/* Parse the response head at the start of buf[0..len); `counted`: what
 * earlier calls counted of the 1xx heads dropped since (0 at first: see
 * itd_http1_head.end), so that feeding a dripped head again costs only
 * what is left of it.  Lines end at LF, one CR before it dropped.
 * ITD_HTTP1_DONE with *head set (fn called for the final head's headers,
 * in order), ITD_HTTP1_MORE (head->end, head->counted set) when the bytes
 * end before the head does and no limit is passed yet, or
 * ITD_HTTP1_MALFORMED with what is wrong in why[0..whylen) (e.g.
 * "malformed status line", "response header line longer than 102400
 * bytes").  fn may be NULL. */
int itd_http1_parse_head(const char *buf, size_t len, const itd_http1_limits *lim, size_t counted,
                         itd_http1_head *head, itd_http1_header_fn fn, void *ud, char *why, size_t whylen);

/* The bytes of `q` as an HTTP/1.1 request: the request line (the target:
 * the URL from its path on, without a fragment), q's headers as they are,
 * Host (the URL's authority, without the scheme's default port) and, for a
 * method other than GET and DELETE, Content-Length (0 for a POST without a
 * body), the blank line, the body.  Written to dst (cap bytes; NUL-free, not
 * terminated): the length the request takes, which may pass cap (then
 * write it again into that much), or 0 when the URL is not "http(s)://...".
 * The bytes carry the API key: the caller wipes them. */
size_t itd_http1_request(const itd_request *q, char *dst, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
