/* fuzz_schema: every model schema's decoder, with round trip, clone and
 * redaction.  Input: one selector byte, then a JSON document.  The low 7
 * bits of the selector pick the schema: '0' + index into itd_schemas (values
 * below '0' are an index as they are; both modulo the number of schemas); the
 * top bit decodes in ITD_MODE_USER
 * (a document a program built) instead of the default mode.
 * Checks, for a document that decodes:
 *  - it encodes, to text that parses to exactly the values the object holds; the encoding decodes again with the same schema and mode and
 *    encodes to the same text (encode o decode is idempotent);
 *  - arena decoding (itd_decode) and tree decoding (itd_decode_take) agree;
 *  - the frozen decode (itd_decode_frozen: one arena, strings in place)
 *    accepts and refuses the same documents, with the same error, and its
 *    object encodes, clones and redacts the same;
 *  - itd_clone encodes to the same text;
 *  - the redacted rendering has "***" for every secret field (S3
 *    secretAccessKey, every webhook header value) and the same shape;
 * and for one that does not: the error has a kind and a message. */
#include <cjson/cJSON.h>
#include "intuned.h"
#include "model_internal.h"
#include "fuzz.h"

static size_t nschemas;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    while (itd_schemas[nschemas]) nschemas++;
    return 0;
}

static void *decode(const itd_schema *s, int user, const char *text, size_t len, itd_error *err)
{
    if (!user) return itd_decode(s, text, len, NULL, err);
    size_t off;
    const char *why;
    cJSON *tree = itd_json_parse(text, len, &off, &why);
    if (!tree) {
        itd_error_set(err, ITD_ERR_VALIDATION, "", "invalid JSON at byte %zu: %s", off, why);
        return NULL;
    }
    return itd_decode_take_ex(s, tree, ITD_MODE_USER, NULL, err);
}

static int is_redacted(const cJSON *v)
{
    if (cJSON_IsString(v)) return strcmp(v->valuestring, "***") == 0;
    if (cJSON_IsObject(v)) {
        for (const cJSON *it = v->child; it; it = it->next)
            if (!cJSON_IsString(it) || strcmp(it->valuestring, "***") != 0) return 0;
        return 1;
    }
    return 0;
}

/* Walk the object and its redacted rendering together. */
static void check_redacted(const itd_schema *s, const void *obj, const cJSON *t, const char *where)
{
    const itd_obj *h = obj;
    if (!obj || !t) return;
    if (h->schema) s = h->schema;
    if (s == &itd_CalendarValue || !s->fields) return; /* no secrets below a calendar value */
    for (size_t i = 0; i < s->nfields; i++) {
        const itd_field *f = &s->fields[i];
        const cJSON *v;
        if (cJSON_IsArray(t) && (s->flags & ITD_S_ARRAY_FORM)) v = i == 0 ? t : NULL;
        else v = cJSON_GetObjectItemCaseSensitive(t, f->name);
        if (!v) continue;
        if (f->flags & ITD_SECRET) {
            FUZZ_CHECK(is_redacted(v) || cJSON_IsNull(v), "%s.%s not redacted", where, f->name);
            continue;
        }
        if (f->kind == ITD_F_OBJECT) {
            check_redacted(f->sub, *(void *const *)((const char *)obj + f->off), v, f->name);
        } else if (f->kind == ITD_F_ARRAY) {
            const itd_array *a = (const itd_array *)((const char *)obj + f->off);
            FUZZ_CHECK(cJSON_IsArray(v) && (size_t)cJSON_GetArraySize(v) == a->n, "%s.%s: array shape", where, f->name);
            const cJSON *it = v->child;
            for (size_t k = 0; k < a->n && it; k++, it = it->next) check_redacted(f->sub, a->items[k], it, f->name);
        }
    }
}

/* Same tree with every secret value replaced: key sets equal. */
static int same_shape(const cJSON *a, const cJSON *b)
{
    if ((a->type & 0xff) != (b->type & 0xff)) return 0;
    if (!cJSON_IsObject(a) && !cJSON_IsArray(a)) return 1;
    const cJSON *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next) {
        if (cJSON_IsObject(a) && strcmp(x->string, y->string) != 0) return 0;
        if (!same_shape(x, y) && !cJSON_IsString(y)) return 0; /* a redacted value is a string */
    }
    return !x && !y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20)) return 0;
    unsigned v = data[0] & 0x7fu;
    const itd_schema *s = itd_schemas[(v >= 0x30 ? v - 0x30 : v) % nschemas];
    int user = (data[0] & 0x80) != 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    itd_error err = ITD_ERROR_INIT;
    void *o = decode(s, user, text, len, &err);
    if (!o) {
        FUZZ_CHECK(err.kind != ITD_ERR_NONE && err.message[0], "%s: refused without kind/message", s->name);
        FUZZ_CHECK(err.kind == ITD_ERR_VALIDATION || err.kind == ITD_ERR_DECODE, "%s: kind %s", s->name,
                   itd_err_kind_name(err.kind));
        if (!user) { /* the frozen decode refuses it the same way */
            itd_error e2 = ITD_ERROR_INIT;
            void *of = itd_decode_frozen(s, text, len, NULL, &e2);
            FUZZ_CHECK(!of, "%s: itd_decode refused (%s) what itd_decode_frozen accepts", s->name, err.message);
            FUZZ_CHECK(e2.kind == err.kind && strcmp(e2.message, err.message) == 0 && strcmp(e2.path, err.path) == 0,
                       "%s: frozen decode error differs:\n %s: %s\n %s: %s", s->name, err.path, err.message, e2.path,
                       e2.message);
            itd_error_clear(&e2);
        }
        itd_error_clear(&err);
        if (!user) { /* the tree path refuses too */
            cJSON *tree = itd_json_parse(text, len, NULL, NULL);
            if (tree) {
                void *o2 = itd_decode_take(s, tree, NULL, &err);
                FUZZ_CHECK(!o2, "%s: itd_decode refused (%s) what itd_decode_take accepts", s->name, err.message);
                itd_error_clear(&err);
            }
        }
        return 0;
    }
    itd_error_clear(&err);

    size_t n1 = 0;
    char *e1 = itd_encode(s, o, &n1);
    FUZZ_CHECK(e1, "%s: encode failed", s->name);

    {   /* the text says exactly what the object holds: numbers too */
        cJSON *t1 = itd_to_cjson(s, o), *t2 = itd_json_parse(e1, n1, NULL, NULL);
        FUZZ_CHECK(t1 && t2, "%s: encoding does not parse", s->name);
        if (!fz_tree_equal(t1, t2)) FUZZ_CHECK(0, "%s: the encoding changes a value: %.300s", s->name, e1);
        cJSON_Delete(t1);
        cJSON_Delete(t2);
    }

    void *o2 = decode(s, user, e1, n1, &err);
    FUZZ_CHECK(o2, "%s: own encoding refused (%s at %s): %.300s", s->name, err.message, err.path, e1);
    char *e2 = itd_encode(s, o2, NULL);
    FUZZ_CHECK(e2 && strcmp(e1, e2) == 0, "%s: encode o decode not idempotent:\n 1: %.300s\n 2: %.300s", s->name,
               e1, e2 ? e2 : "(null)");

    if (!user) {
        cJSON *tree = itd_json_parse(text, len, NULL, NULL);
        FUZZ_CHECK(tree, "%s: decoded but the text does not parse", s->name);
        void *o3 = itd_decode_take(s, tree, NULL, &err);
        FUZZ_CHECK(o3, "%s: itd_decode_take refuses (%s) what itd_decode accepts", s->name, err.message);
        char *e3 = itd_encode(s, o3, NULL);
        FUZZ_CHECK(e3 && strcmp(e1, e3) == 0, "%s: arena and tree decoding differ:\n %.300s\n %.300s", s->name, e1,
                   e3 ? e3 : "(null)");
        free(e3);
        itd_free(s, o3);
        void *of = itd_decode_frozen(s, text, len, NULL, &err);
        FUZZ_CHECK(of, "%s: itd_decode_frozen refuses (%s) what itd_decode accepts", s->name, err.message);
        char *ef = itd_encode(s, of, NULL);
        FUZZ_CHECK(ef && strcmp(e1, ef) == 0, "%s: frozen and arena decoding differ:\n %.300s\n %.300s", s->name, e1,
                   ef ? ef : "(null)");
        free(ef);
        void *cf = itd_clone(s, of); /* a clone of a frozen tree is an ordinary one */
        ef = cf ? itd_encode(s, cf, NULL) : NULL;
        FUZZ_CHECK(ef && strcmp(e1, ef) == 0, "%s: clone of a frozen tree differs", s->name);
        free(ef);
        itd_free(s, cf);
        cJSON *rf = itd_to_cjson_redacted(s, of);
        FUZZ_CHECK(rf, "%s: frozen rendering failed", s->name);
        check_redacted(s, of, rf, s->name);
        cJSON_Delete(rf);
        itd_free(s, of);
    }

    void *c = itd_clone(s, o);
    FUZZ_CHECK(c, "%s: clone failed", s->name);
    char *ec = itd_encode(s, c, NULL);
    FUZZ_CHECK(ec && strcmp(e1, ec) == 0, "%s: clone differs:\n %.300s\n %.300s", s->name, e1, ec ? ec : "(null)");

    cJSON *plain = itd_to_cjson(s, o);
    cJSON *red = itd_to_cjson_redacted(s, o);
    FUZZ_CHECK(plain && red, "%s: rendering failed", s->name);
    check_redacted(s, o, red, s->name);
    FUZZ_CHECK(same_shape(plain, red), "%s: redacted rendering has another shape", s->name);
    cJSON *redc = itd_to_cjson_redacted(s, c);
    if (!redc || !fz_tree_equal(red, redc)) {
        char *x = cJSON_PrintUnformatted(red), *y = redc ? cJSON_PrintUnformatted(redc) : NULL;
        FUZZ_CHECK(0, "%s: clone redacts differently:\n %.400s\n %.400s", s->name, x, y ? y : "(null)");
    }

    cJSON_Delete(plain);
    cJSON_Delete(red);
    cJSON_Delete(redc);
    free(ec);
    itd_free(s, c);
    free(e2);
    itd_free(s, o2);
    free(e1);
    itd_free(s, o);
    itd_error_clear(&err);
    return 0;
}
