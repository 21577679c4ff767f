/* bench/curl_baseline.c - the transport alone, as the baseline of bench/client:
 *   seq   URL N      N x curl_easy_perform on one reused handle, body discarded
 *   multi URL N C    N requests over curl_multi with C in flight, bodies discarded
 * Prints "<requests per second>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

static size_t discard(char *p, size_t s, size_t n, void *u) { (void)p; (void)u; return s * n; }
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static CURL *handle(const char *url, struct curl_slist *hdrs)
{
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    return h;
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: %s seq|multi URL N [C]\n", argv[0]); return 2; }
    const char *url = argv[2];
    long n = atol(argv[3]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* the same request headers the client sends */
    struct curl_slist *hdrs = curl_slist_append(NULL, "x-api-key: bench-key");
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    double t0;
    if (strcmp(argv[1], "seq") == 0) {
        CURL *h = handle(url, hdrs);
        t0 = now();
        for (long i = 0; i < n; i++)
            if (curl_easy_perform(h) != CURLE_OK) { fprintf(stderr, "request failed\n"); return 1; }
        curl_easy_cleanup(h);
    } else {
        long c = argc > 4 ? atol(argv[4]) : 32, started = 0, done = 0;
        CURLM *m = curl_multi_init();
        CURL **hs = calloc((size_t)c, sizeof *hs);
        t0 = now();
        for (long i = 0; i < c && started < n; i++, started++) { hs[i] = handle(url, hdrs); curl_multi_add_handle(m, hs[i]); }
        while (done < n) {
            int running, left;
            curl_multi_perform(m, &running);
            CURLMsg *msg;
            while ((msg = curl_multi_info_read(m, &left))) {
                CURL *h = msg->easy_handle;
                curl_multi_remove_handle(m, h);
                done++;
                if (started < n) { curl_multi_add_handle(m, h); started++; }
            }
            if (done < n) curl_multi_poll(m, NULL, 0, 1000, NULL);
        }
        for (long i = 0; i < c; i++) if (hs[i]) curl_easy_cleanup(hs[i]);
        free(hs);
        curl_multi_cleanup(m);
    }
    printf("%.1f\n", (double)n / (now() - t0));
    curl_slist_free_all(hdrs);
    curl_global_cleanup();
    return 0;
}
