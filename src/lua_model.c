/*
 * lua_model.c - the Lua face of the model: one userdata type for every model
 * object, typed constructors (intuned.Job.new / .decode, ...), free-form JSON
 * values (tables marked as JSON objects or arrays), times and durations.
 *
 * Objects are immutable views into one C tree (a "doc").  A nested object
 * (job.configuration) is another view of the same doc; the doc is
 * reference-counted by its views, so it lives as long as any of them.
 * The userdata is always created (zeroed, metatable set) before C memory is
 * attached to it, so __gc can clean up whatever happens next.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lua_intuned.h"
#include "model_internal.h"  /* the schemas' field tables: objects read and write fields through them */

#define OBJ_MT "intuned.Object"
#define TMP_MT "intuned.TmpJSON"

/* Registry keys for the free-form container markers (light userdata keys). */
static char OBJECT_MT_KEY, ARRAY_MT_KEY;

/* ------------------------------------------------------------ docs, views */

typedef struct doc {
    int refs;
    int in_root;  /* allocated in the frozen root's own arena: freed with it */
    const itd_schema *schema;
    void *root;
    itd_warnings warn;
} doc;

typedef struct view {
    doc *d;
    const itd_schema *s; /* exact schema of obj (union branch resolved) */
    void *obj;
} view;

static void doc_release(doc *d)
{
    if (d && --d->refs == 0) {
        itd_warnings_clear(&d->warn);
        int own = !d->in_root; /* else d is in the root's arena and goes with it */
        itd_free(d->schema, d->root);
        if (own) free(d);
    }
}

/* The objects' metatable, also kept in the registry under this address:
 * a raw lookup by a light userdata, where luaL_setmetatable and
 * luaL_testudata look it up by name (a string made and hashed each time)
 * for every object pushed and every field read. */
static const char obj_mt_key = 0;

static void push_obj_mt(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&obj_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
}

/* The view at idx, or NULL when it is not one of ours. */
static view *as_view(lua_State *L, int idx)
{
    view *v = lua_touserdata(L, idx);
    if (!v || !lua_getmetatable(L, idx)) return NULL;
    push_obj_mt(L);
    int ours = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return ours ? v : NULL;
}

static view *new_view(lua_State *L)
{
    view *v = lua_newuserdata(L, sizeof *v);
    memset(v, 0, sizeof *v);
    push_obj_mt(L);
    lua_setmetatable(L, -2);
    return v;
}

static const itd_schema *exact(const itd_schema *s, const void *obj)
{
    const itd_obj *h = obj;
    return h && h->schema ? h->schema : s;
}

/* Attach an owned root to a fresh view (on top of the stack).  Returns 0, or
 * -1 on OOM (obj and w are freed then: the caller raises afterwards). */
static int attach_root(view *v, const itd_schema *s, void *obj, itd_warnings *w)
{
    /* a frozen tree holds its doc too: one allocation fewer per answer */
    doc *d = itd_frozen_alloc(obj, sizeof *d);
    if (d) d->in_root = 1;
    else d = calloc(1, sizeof *d);
    if (!d) {
        itd_free(s, obj);
        itd_warnings_clear(w);
        return -1;
    }
    d->refs = 1;
    d->schema = s;
    d->root = obj;
    if (w) { d->warn = *w; w->n = 0; w->items = NULL; }
    v->d = d;
    v->s = exact(s, obj);
    v->obj = obj;
    return 0;
}

void itdl_push_owned(lua_State *L, const itd_schema *s, void *obj, itd_warnings *w)
{
    view *v = new_view(L);
    if (attach_root(v, s, obj, w)) luaL_error(L, "intuned: out of memory");
}

static void push_subview(lua_State *L, doc *d, const itd_schema *s, void *obj)
{
    view *v = new_view(L);
    v->d = d;
    d->refs++;
    v->s = exact(s, obj);
    v->obj = obj;
}

void itdl_push_items(lua_State *L, const itd_schema *rs, void *root, const itd_schema *es, size_t list_off)
{
    const itd_array *a = (const itd_array *)((const char *)root + list_off);
    lua_createtable(L, a->n < INT32_MAX ? (int)a->n : 0, 1);
    view *owner = new_view(L); /* the list's own view, dropped below: the items keep the doc */
    if (attach_root(owner, rs, root, NULL)) luaL_error(L, "intuned: out of memory");
    for (size_t i = 0; i < a->n; i++) {
        if (a->items[i]) push_subview(L, owner->d, es, a->items[i]);
        else lua_pushboolean(L, 0);
        lua_rawseti(L, -3, (lua_Integer)i + 1);
    }
    lua_pop(L, 1);
}

static view *test_view(lua_State *L, int idx)
{
    view *v = as_view(L, idx);
    return v && v->obj ? v : NULL;
}

static int schema_is(const itd_schema *have, const itd_schema *want)
{
    if (have == want) return 1;
    if (want->branches)
        for (const itd_schema *const *b = want->branches; *b; b++)
            if (*b == have) return 1;
    return 0;
}

void *itdl_test_object(lua_State *L, int idx, const itd_schema *s)
{
    view *v = test_view(L, idx);
    return v && schema_is(v->s, s) ? v->obj : NULL;
}

static view *check_view(lua_State *L, int idx)
{
    view *v = test_view(L, idx);
    if (!v) luaL_argerror(L, idx, "intuned object expected");
    return v;
}

/* --------------------------------------------------------- JSON <-> Lua */

static int is_null(lua_State *L, int idx)
{
    /* intuned.null is the NULL light userdata, as lua-cjson's cjson.null */
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

static int has_marker(lua_State *L, int idx, void *key)
{
    if (!lua_getmetatable(L, idx)) return 0;
    lua_pushlightuserdata(L, key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

void itdl_push_cjson(lua_State *L, const cJSON *v)
{
    luaL_checkstack(L, 4, "JSON value nested too deeply");
    if (cJSON_IsNull(v) || !v) {
        lua_pushlightuserdata(L, NULL);
    } else if (cJSON_IsBool(v)) {
        lua_pushboolean(L, cJSON_IsTrue(v));
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
#if LUA_VERSION_NUM >= 503
        if (d == floor(d) && d >= -9007199254740992.0 && d <= 9007199254740992.0)
            lua_pushinteger(L, (lua_Integer)d);
        else
#endif
            lua_pushnumber(L, d);
    } else if (cJSON_IsString(v)) {
        lua_pushstring(L, v->valuestring);
    } else {
        int arr = cJSON_IsArray(v);
        int n = cJSON_GetArraySize(v);
        lua_createtable(L, arr ? n : 0, arr ? 0 : n);
        int i = 1;
        for (const cJSON *it = v->child; it; it = it->next) {
            itdl_push_cjson(L, it);
            if (arr) lua_rawseti(L, -2, i++);
            else lua_setfield(L, -2, it->string);
        }
        lua_pushlightuserdata(L, arr ? &ARRAY_MT_KEY : &OBJECT_MT_KEY);
        lua_rawget(L, LUA_REGISTRYINDEX);
        lua_setmetatable(L, -2);
    }
}

/* A cJSON tree under construction lives in a userdata so that a Lua error
 * raised midway (out of memory) cannot leak it. */
typedef struct tmpjson { cJSON *tree; } tmpjson;

static int tmp_gc(lua_State *L)
{
    tmpjson *t = lua_touserdata(L, 1);
    cJSON_Delete(t->tree);
    t->tree = NULL;
    return 0;
}

typedef struct conv {
    itd_error *err;
    char path[ITD_PATH_MAX];
    size_t plen;
    int depth;
    const void *open[ITD_MAX_DEPTH + 1]; /* the tables being converted, outermost first */
} conv;

/* Append ".key" (key != NULL) or "[idx]" to the path. */
static size_t conv_push(conv *c, const char *key, size_t idx)
{
    size_t old = c->plen;
    int n = key ? snprintf(c->path + c->plen, sizeof c->path - c->plen, "%s%s", c->plen ? "." : "", key)
                : snprintf(c->path + c->plen, sizeof c->path - c->plen, "[%zu]", idx);
    if (n > 0) c->plen = c->plen + (size_t)n < sizeof c->path ? c->plen + (size_t)n : sizeof c->path - 1;
    return old;
}

static void conv_pop(conv *c, size_t old)
{
    c->plen = old;
    c->path[old] = 0;
}

static int conv_fail(conv *c, const char *msg, const char *what)
{
    return itd_error_set(c->err, ITD_ERR_VALIDATION, c->path, msg, what);
}

static int add_child(cJSON *parent, const char *key, cJSON *child)
{
    if (cJSON_IsArray(parent)) return cJSON_AddItemToArray(parent, child) ? 0 : -1;
    return cJSON_AddItemToObject(parent, key, child) ? 0 : -1;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Convert the Lua value at idx and attach it to `parent` (under key). */
static int conv_value(lua_State *L, int idx, conv *c, cJSON *parent, const char *key)
{
    cJSON *node = NULL;
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        node = cJSON_CreateBool(lua_toboolean(L, idx));
        break;
    case LUA_TNUMBER: {
#if LUA_VERSION_NUM >= 503
        if (lua_isinteger(L, idx)) {
            lua_Integer i = lua_tointeger(L, idx);
            if (i > ((lua_Integer)1 << 53) || i < -((lua_Integer)1 << 53))
                return conv_fail(c, "integer %s is too large to be exact in JSON (beyond 2^53)",
                                 lua_tostring(L, idx));
            node = cJSON_CreateNumber((double)i);
            break;
        }
#endif
        double d = lua_tonumber(L, idx);
        if (!isfinite(d)) return conv_fail(c, "expected a finite number, got %s", d != d ? "nan" : "inf");
        node = cJSON_CreateNumber(d);
        break;
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (strlen(s) != n) return conv_fail(c, "%s", "string contains a NUL byte");
        node = cJSON_CreateString(s);
        break;
    }
    case LUA_TLIGHTUSERDATA:
        if (!is_null(L, idx)) return conv_fail(c, "expected a JSON value, got %s", "light userdata");
        node = cJSON_CreateNull();
        break;
    case LUA_TUSERDATA: {
        view *v = test_view(L, idx);
        if (!v) return conv_fail(c, "expected a JSON value, got %s", "userdata");
        node = itd_to_cjson(v->s, v->obj);
        break;
    }
    case LUA_TTABLE: {
        if (++c->depth > ITD_MAX_DEPTH)
            return conv_fail(c, "%s", "nested more than 1000 levels deep");
        /* a table inside itself: say so at the first repeat, not 1000 levels down */
        const void *self = lua_topointer(L, idx);
        for (int i = 0; i < c->depth - 1; i++)
            if (c->open[i] == self) return conv_fail(c, "%s", "cyclic table (cycle: it contains itself)");
        c->open[c->depth - 1] = self;
        luaL_checkstack(L, 6, "table nested too deeply");
        int want_arr = has_marker(L, idx, &ARRAY_MT_KEY), want_obj = has_marker(L, idx, &OBJECT_MT_KEY);
        /* Survey keys: a sequence 1..n is an array, string keys an object. */
        size_t nstr = 0, nint = 0, maxint = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            if (lua_type(L, -1) == LUA_TSTRING) {
                size_t kl;
                const char *ks = lua_tolstring(L, -1, &kl);
                if (strlen(ks) != kl) { lua_pop(L, 1); return conv_fail(c, "%s", "table key contains a NUL byte"); }
                nstr++;
                continue;
            }
            if (lua_type(L, -1) == LUA_TNUMBER) {
                double k = lua_tonumber(L, -1);
                if (k >= 1 && k == floor(k) && k < 1e15) {
                    nint++;
                    if ((size_t)k > maxint) maxint = (size_t)k;
                    continue;
                }
            }
            const char *tn = luaL_typename(L, -1);
            lua_pop(L, 1);
            return conv_fail(c, "table key of type %s cannot be a JSON key (use strings or 1..n)", tn);
        }
        if (nstr && nint) return conv_fail(c, "%s", "table mixes array items and string keys");
        if (want_arr && nstr) return conv_fail(c, "%s", "table marked as an array has string keys");
        if (want_obj && nint) return conv_fail(c, "%s", "table marked as an object has integer keys");
        if (nint && maxint != nint)
            return conv_fail(c, "%s", "array has holes (keys must be 1..n; use intuned.null for JSON null)");
        int arr = want_arr || (nint > 0);
        node = arr ? cJSON_CreateArray() : cJSON_CreateObject();
        if (!node || add_child(parent, key, node)) { cJSON_Delete(node); return itd_error_set(c->err, ITD_ERR_NOMEM, c->path, "out of memory"); }
        if (!arr && !nstr && !want_obj) node->type |= ITD_CJSON_EMPTY_TABLE;
        if (arr) {
            for (size_t i = 1; i <= nint; i++) {
                lua_rawgeti(L, idx, (int)i);
                size_t old = conv_push(c, NULL, i);
                if (conv_value(L, -1, c, node, NULL)) return -1;
                conv_pop(c, old);
                lua_pop(L, 1);
            }
        } else if (nstr) {
            /* Lua tables have no order: write keys sorted, so output is stable */
            const char **keys = lua_newuserdata(L, nstr * sizeof *keys);
            size_t k = 0;
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                lua_pop(L, 1);
                keys[k++] = lua_tostring(L, -1); /* kept alive by the table */
            }
            qsort(keys, nstr, sizeof *keys, cmp_keys);
            for (k = 0; k < nstr; k++) {
                lua_getfield(L, idx, keys[k]);
                size_t old = conv_push(c, keys[k], 0);
                if (conv_value(L, -1, c, node, keys[k])) return -1;
                conv_pop(c, old);
                lua_pop(L, 1);
            }
            lua_pop(L, 1); /* keys */
        }
        c->depth--;
        return 0;
    }
    default:
        return conv_fail(c, "expected a JSON value, got %s", luaL_typename(L, idx));
    }
    if (!node || add_child(parent, key, node)) {
        cJSON_Delete(node);
        return itd_error_set(c->err, ITD_ERR_NOMEM, c->path, "out of memory");
    }
    return 0;
}

/* Convert to a tree held by a new TmpJSON userdata pushed on the stack. */
static tmpjson *to_tmp(lua_State *L, int idx, itd_error *err, const char *path)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    tmpjson *t = lua_newuserdata(L, sizeof *t);
    t->tree = NULL;
    luaL_setmetatable(L, TMP_MT);
    cJSON *holder = cJSON_CreateArray();
    if (!holder) { itd_error_set(err, ITD_ERR_NOMEM, path, "out of memory"); return NULL; }
    t->tree = holder;
    conv c;
    memset(&c, 0, sizeof c);
    c.err = err;
    snprintf(c.path, sizeof c.path, "%s", path ? path : "");
    c.plen = strlen(c.path);
    if (conv_value(L, idx, &c, holder, NULL)) return NULL;
    return t;
}

void *itdl_to_object(lua_State *L, int idx, const itd_schema *s, itd_warnings *w, itd_error *err)
{
    view *v = test_view(L, idx);
    if (v) {
        if (schema_is(v->s, s)) {
            void *copy = itd_clone(v->s, v->obj);
            if (!copy) itd_error_set(err, ITD_ERR_NOMEM, "", "out of memory");
            return copy;
        }
        itd_error_set(err, ITD_ERR_VALIDATION, "", "expected a table or an intuned.%s, got an intuned.%s",
                      s->name, v->s->name);
        return NULL;
    }
    if (!lua_istable(L, idx)) {
        itd_error_set(err, ITD_ERR_VALIDATION, "", "expected a table or an intuned.%s, got %s", s->name,
                      luaL_typename(L, idx));
        return NULL;
    }
    tmpjson *t = to_tmp(L, idx, err, "");
    void *obj = NULL;
    if (t) {
        cJSON *tree = cJSON_DetachItemFromArray(t->tree, 0);
        obj = itd_decode_take_ex(s, tree, ITD_MODE_USER, w, err);
    }
    lua_pop(L, 1);
    return obj;
}

/* --------------------------------------------------------- field access */

static void push_number(lua_State *L, double d)
{
#if LUA_VERSION_NUM >= 503
    if (d == floor(d) && d >= -9007199254740992.0 && d <= 9007199254740992.0) {
        lua_pushinteger(L, (lua_Integer)d);
        return;
    }
#endif
    lua_pushnumber(L, d);
}

static void push_numstr(lua_State *L, const itd_numstr *ns)
{
    if (ns->kind == ITD_NS_NUMBER) push_number(L, ns->num);
    else if (ns->kind == ITD_NS_STRING) lua_pushstring(L, ns->str);
    else lua_pushnil(L);
}

static void push_calvalue(lua_State *L, doc *d, const itd_calvalue *cv)
{
    switch (cv->kind) {
    case ITD_CV_NUMBER: push_number(L, cv->num); break;
    case ITD_CV_STRING: lua_pushstring(L, cv->str); break;
    case ITD_CV_RANGE: push_subview(L, d, &itd_CalendarRange, cv->range); break;
    case ITD_CV_LIST:
        lua_createtable(L, (int)cv->list.n, 0);
        for (size_t i = 0; i < cv->list.n; i++) {
            push_calvalue(L, d, cv->list.items[i]);
            lua_rawseti(L, -2, (int)i + 1);
        }
        break;
    default: lua_pushnil(L);
    }
}

#define AT(base, off, type) ((type *)((char *)(base) + (off)))

static void push_field(lua_State *L, view *v, const itd_field *f)
{
    void *b = v->obj;
    if (f->null_off && *AT(b, f->null_off, int)) { lua_pushnil(L); return; }
    int has = f->has_off ? *AT(b, f->has_off, int) : 1;
    switch (f->kind) {
    case ITD_F_STRING: lua_pushstring(L, *AT(b, f->off, char *)); break; /* NULL pushes nil */
    case ITD_F_NUMBER: if (has) push_number(L, *AT(b, f->off, double)); else lua_pushnil(L); break;
    case ITD_F_BOOL: if (has) lua_pushboolean(L, *AT(b, f->off, int)); else lua_pushnil(L); break;
    case ITD_F_JSON: {
        cJSON *j = *AT(b, f->off, cJSON *);
        if (j) itdl_push_cjson(L, j); else lua_pushnil(L);
        break;
    }
    case ITD_F_OBJECT: {
        void *o = *AT(b, f->off, void *);
        if (o) push_subview(L, v->d, f->sub, o); else lua_pushnil(L);
        break;
    }
    case ITD_F_ARRAY: {
        itd_array *a = AT(b, f->off, itd_array);
        if (!has && !a->n) { lua_pushnil(L); break; }
        lua_createtable(L, (int)a->n, 0);
        for (size_t i = 0; i < a->n; i++) {
            push_subview(L, v->d, f->sub, a->items[i]);
            lua_rawseti(L, -2, (int)i + 1);
        }
        break;
    }
    case ITD_F_NUMSTR: push_numstr(L, AT(b, f->off, itd_numstr)); break;
    case ITD_F_CALVALUE: {
        itd_calvalue *cv = *AT(b, f->off, itd_calvalue *);
        if (cv) push_calvalue(L, v->d, cv); else lua_pushnil(L);
        break;
    }
    }
}

static const itd_field *lookup(const itd_schema *s, const char *key)
{
    for (size_t i = 0; i < s->nfields; i++) {
        const itd_field *f = &s->fields[i];
        /* the first byte first: a field read runs this for every access */
        if ((f->name[0] == key[0] && strcmp(f->name, key) == 0) ||
            (f->alias && f->alias[0] == key[0] && strcmp(f->alias, key) == 0) ||
            (f->sdk_name && f->sdk_name[0] == key[0] && strcmp(f->sdk_name, key) == 0))
            return f;
    }
    return NULL;
}

static int obj_index(lua_State *L)
{
    view *v = check_view(L, 1);
    const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    /* the model's own fields first, so no method name can hide one */
    const itd_field *f = key ? lookup(v->s, key) : NULL;
    if (f) {
        push_field(L, v, f);
        return 1;
    }
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "__methods");
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1)) return 1;
    if (v->s == &itd_Job || v->s == &itd_JobInput || v->s == &itd_JobUpdateInput) {
        lua_getfield(L, -3, "__convert"); /* to_input / to_update: only job definitions have them */
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
        if (!lua_isnil(L, -1)) return 1;
        lua_pop(L, 2);
    }
    lua_getfield(L, -3, "__by_schema"); /* methods of one type (lua_schedule.c: JobSchedule's) */
    lua_getfield(L, -1, v->s->name);
    if (lua_istable(L, -1)) {
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
        if (!lua_isnil(L, -1)) return 1;
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    lua_pop(L, 3);
    if (!key)
        return luaL_error(L, "intuned.%s: field names are strings, got %s", v->s->name, luaL_typename(L, 2));
    const cJSON *extra = ((itd_obj *)v->obj)->extra;
    const cJSON *x = extra ? cJSON_GetObjectItemCaseSensitive(extra, key) : NULL;
    if (x) {
        itdl_push_cjson(L, x);
        return 1;
    }
    const char *near = itd_closest_field(v->s, key);
    if (near) return luaL_error(L, "intuned.%s has no field '%s' (did you mean '%s'?)", v->s->name, key, near);
    return luaL_error(L, "intuned.%s has no field '%s'", v->s->name, key);
}

static int obj_newindex(lua_State *L)
{
    view *v = check_view(L, 1);
    return luaL_error(L, "intuned.%s objects are read-only; change a copy with t = obj:to_table() and "
                         "build a new one with intuned.%s.new(t)", v->s->name, v->s->name);
}

static int obj_gc(lua_State *L)
{
    view *v = as_view(L, 1);
    if (v && v->d) {
        doc_release(v->d);
        v->d = NULL;
        v->obj = NULL;
    }
    return 0;
}

/* Push a malloc'd C string and free it (Lua copies it). */
static int push_freed(lua_State *L, char *s)
{
    if (!s) return luaL_error(L, "intuned: out of memory");
    lua_pushstring(L, s);
    free(s);
    return 1;
}

static int obj_tostring(lua_State *L)
{
    view *v = check_view(L, 1);
    cJSON *t = itd_to_cjson_redacted(v->s, v->obj);
    char *s = t ? itd_json_print(t, NULL) : NULL;
    cJSON_Delete(t);
    if (!s) return luaL_error(L, "intuned: out of memory");
    size_t n = strlen(s);
    const size_t max = 600;
    if (n > max) memcpy(s + max - 3, "...", 4);
    lua_pushfstring(L, "intuned.%s ", v->s->name);
    lua_pushstring(L, s);
    free(s);
    lua_concat(L, 2);
    return 1;
}

static int m_to_json(lua_State *L)
{
    view *v = check_view(L, 1);
    return push_freed(L, itd_encode(v->s, v->obj, NULL));
}

static int m_to_table(lua_State *L)
{
    view *v = check_view(L, 1);
    lua_settop(L, 1);
    tmpjson *t = lua_newuserdata(L, sizeof *t);
    t->tree = NULL;
    luaL_setmetatable(L, TMP_MT);
    t->tree = itd_to_cjson(v->s, v->obj);
    if (!t->tree) return luaL_error(L, "intuned: out of memory");
    itdl_push_cjson(L, t->tree);
    return 1;
}

static int m_warnings(lua_State *L)
{
    view *v = check_view(L, 1);
    lua_createtable(L, (int)v->d->warn.n, 0);
    for (size_t i = 0; i < v->d->warn.n; i++) {
        lua_pushstring(L, v->d->warn.items[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

#if LUA_VERSION_NUM >= 502
/* pairs(obj): the present fields by wire name, then kept unknown keys. */
static int obj_next(lua_State *L)
{
    view *v = check_view(L, 1);
    size_t i = 0;
    if (!lua_isnil(L, 2)) {
        const char *k = lua_tostring(L, 2);
        const itd_field *f = k ? lookup(v->s, k) : NULL;
        if (f) i = (size_t)(f - v->s->fields) + 1;
        else i = v->s->nfields; /* continue in extras */
        if (!f) {
            const cJSON *x = ((itd_obj *)v->obj)->extra;
            const cJSON *it = x ? cJSON_GetObjectItemCaseSensitive(x, k) : NULL;
            it = it ? it->next : NULL;
            if (!it) return 0;
            lua_pushstring(L, it->string);
            itdl_push_cjson(L, it);
            return 2;
        }
    }
    for (; i < v->s->nfields; i++) {
        push_field(L, v, &v->s->fields[i]);
        if (!lua_isnil(L, -1)) {
            lua_pushstring(L, v->s->fields[i].name);
            lua_insert(L, -2);
            return 2;
        }
        lua_pop(L, 1);
    }
    const cJSON *x = ((itd_obj *)v->obj)->extra;
    if (x && x->child) {
        lua_pushstring(L, x->child->string);
        itdl_push_cjson(L, x->child);
        return 2;
    }
    return 0;
}

static int obj_pairs(lua_State *L)
{
    check_view(L, 1);
    lua_pushcfunction(L, obj_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}
#endif

/* ------------------------------------------------------------ type tables */

static const itd_schema *upvalue_schema(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static int t_new(lua_State *L)
{
    const itd_schema *s = upvalue_schema(L);
    view *existing = test_view(L, 1);
    if (existing && schema_is(existing->s, s)) { /* immutable: the object itself */
        lua_settop(L, 1);
        return 1;
    }
    if (!existing && !lua_istable(L, 1))
        return luaL_argerror(L, 1, lua_pushfstring(L, "table expected to build an intuned.%s, got %s", s->name,
                                                   luaL_typename(L, 1)));
    lua_settop(L, 1);
    view *v = new_view(L); /* index 2: ready before any C memory */
    itd_error e;
    memset(&e, 0, sizeof e);
    itd_warnings w = { 0, NULL };
    void *obj = itdl_to_object(L, 1, s, &w, &e);
    if (!obj) {
        itd_warnings_clear(&w);
        return itdl_push_error_clear(L, &e);
    }
    if (attach_root(v, s, obj, &w)) return luaL_error(L, "intuned: out of memory");
    lua_pushvalue(L, 2);
    return 1;
}

static int t_decode(lua_State *L)
{
    const itd_schema *s = upvalue_schema(L);
    size_t len;
    const char *json = luaL_checklstring(L, 1, &len);
    view *v = new_view(L);
    itd_error e;
    memset(&e, 0, sizeof e);
    itd_warnings w = { 0, NULL };
    void *obj = itd_decode_frozen(s, json, len, &w, &e);
    if (!obj) {
        itd_warnings_clear(&w);
        return itdl_push_error_clear(L, &e);
    }
    if (attach_root(v, s, obj, &w)) return luaL_error(L, "intuned: out of memory");
    /* The object's memory is malloc'd, so Lua's collector does not see it:
     * a step worth about the document's size keeps dropped objects from
     * piling up between collections (RSS, and malloc's cost, grow with them). */
    lua_gc(L, LUA_GCSTEP, (int)(len >> 10) + 1);
    return 1;
}

static int t_is(lua_State *L)
{
    lua_pushboolean(L, itdl_test_object(L, 1, upvalue_schema(L)) != NULL);
    return 1;
}

/* ------------------------------------------------------------ module-level */

static int l_type(lua_State *L)
{
    view *v = test_view(L, 1);
    if (v) lua_pushstring(L, v->s->name);
    else lua_pushnil(L);
    return 1;
}

static int l_mark(lua_State *L, void *key)
{
    if (lua_isnoneornil(L, 1)) { lua_settop(L, 0); lua_newtable(L); }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_pushlightuserdata(L, key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setmetatable(L, 1);
    return 1;
}
static int l_object(lua_State *L) { return l_mark(L, &OBJECT_MT_KEY); }
static int l_array(lua_State *L) { return l_mark(L, &ARRAY_MT_KEY); }

static int l_duration_ms(lua_State *L)
{
    const char *s = luaL_checkstring(L, 1);
    double ms;
    if (itd_duration_ms(s, &ms)) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid duration \"%s\" (expected e.g. \"500ms\", \"1s\", \"10m\")", s);
        return 2;
    }
    push_number(L, ms);
    return 1;
}

static int l_parse_time(lua_State *L)
{
    const char *s = luaL_checkstring(L, 1);
    double t;
    int rc = itd_datetime_parse(s, &t);
    if (rc) {
        lua_pushnil(L);
        if (rc == -2) lua_pushfstring(L, "date-time outside the years 0001 to 9999 (UTC): \"%s\"", s);
        else lua_pushfstring(L, "not an ISO-8601 date-time: \"%s\"", s);
        return 2;
    }
    lua_pushnumber(L, t);
    return 1;
}

/* nil, err (kind validation) for NaN, infinities and times outside the
 * years 0001-9999: the four-digit form cannot write them. */
static int l_format_time(lua_State *L)
{
    char buf[64];
    lua_Number t = luaL_checknumber(L, 1);
    if (itd_datetime_format((double)t, buf, sizeof buf)) {
        lua_pushstring(L, buf);
        return 1;
    }
    itd_error e;
    memset(&e, 0, sizeof e);
    e.retry_after = -1;
    char num[32];
    if (t != t) snprintf(num, sizeof num, "NaN");
    else snprintf(num, sizeof num, "%.15g", (double)t);
    itd_error_set(&e, ITD_ERR_VALIDATION, "", "time %s is outside the years 0001 to 9999: format_time takes "
                  "Unix seconds from %.0f (0001-01-01T00:00:00Z) to below %.0f (10000-01-01T00:00:00Z)",
                  num, ITD_TIME_MIN, ITD_TIME_MAX);
    return itdl_push_error_clear(L, &e);
}

/* encode any Lua value as JSON (free-form rules): handy for hooks and tests */
static int l_encode_json(lua_State *L)
{
    itd_error e;
    memset(&e, 0, sizeof e);
    luaL_checkany(L, 1);
    tmpjson *t = to_tmp(L, 1, &e, "");
    if (!t) {
        return itdl_push_error_clear(L, &e);
    }
    char *s = itd_json_print(t->tree->child, NULL);
    return push_freed(L, s);
}

static int l_decode_json(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (len > ITD_MAX_DOCUMENT_BYTES) {
        lua_pushnil(L);
        lua_pushstring(L, "document too large");
        return 2;
    }
    tmpjson *t = lua_newuserdata(L, sizeof *t);
    t->tree = NULL;
    luaL_setmetatable(L, TMP_MT);
    size_t at = 0;
    const char *why = NULL;
    t->tree = itd_json_parse(s, len, &at, &why);
    if (!t->tree) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid JSON at byte %d: %s", (int)at, why);
        return 2;
    }
    itdl_push_cjson(L, t->tree);
    return 1;
}

static const luaL_Reg obj_methods[] = {
    { "to_json", m_to_json },
    { "to_table", m_to_table },
    { "warnings", m_warnings },
    { NULL, NULL },
};

/* job:to_input([changes]) and job:to_update([changes]) call the function of
 * the same name in intuned.convert: mapping between the API versions' shapes
 * is table work, simpler in Lua. */
static int m_convert(lua_State *L)
{
    check_view(L, 1);
    int n = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "intuned.convert");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, lua_tostring(L, lua_upvalueindex(1)));
    lua_remove(L, -2);
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* core._add_warnings(obj, {text, ...}): intuned.convert adds its remarks to
 * the object it has just built.  Only a root that no other view shares may
 * change, so no object anyone holds changes under them. */
static int l_add_warnings(lua_State *L)
{
    view *v = check_view(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (v->obj != v->d->root || v->d->refs != 1) return luaL_argerror(L, 1, "a freshly built object expected");
    size_t n = (size_t)lua_rawlen(L, 2);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, (int)i);
        const char *msg = luaL_checkstring(L, -1);
        if (itd_warnings_add(&v->d->warn, msg)) return luaL_error(L, "intuned: out of memory");
        lua_pop(L, 1);
    }
    return 0;
}

void itdl_open_model(lua_State *L)
{
    /* object metatable */
    static const luaL_Reg obj_meta[] = {
        { "__index", obj_index },
        { "__newindex", obj_newindex },
        { "__gc", obj_gc },
        { "__tostring", obj_tostring },
#if LUA_VERSION_NUM >= 502
        { "__pairs", obj_pairs },
#endif
        { NULL, NULL },
    };
    itdl_new_type(L, OBJ_MT, obj_meta, NULL);
    lua_pushlightuserdata(L, (void *)&obj_mt_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable"); /* getmetatable(obj) == false: no tampering */
    luaL_newlib(L, obj_methods);
    lua_setfield(L, -2, "__methods");
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "to_input");
    lua_pushcclosure(L, m_convert, 1);
    lua_setfield(L, -2, "to_input");
    lua_pushliteral(L, "to_update");
    lua_pushcclosure(L, m_convert, 1);
    lua_setfield(L, -2, "to_update");
    lua_setfield(L, -2, "__convert");
    lua_pop(L, 1);

    static const luaL_Reg tmp_meta[] = { { "__gc", tmp_gc }, { NULL, NULL } };
    itdl_new_type(L, TMP_MT, tmp_meta, NULL);
    lua_pop(L, 1);

    /* container markers (exported as intuned.object_mt / array_mt) */
    lua_pushlightuserdata(L, &OBJECT_MT_KEY);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "object");
    lua_setfield(L, -2, "__jsontype");
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, &ARRAY_MT_KEY);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
    lua_rawset(L, LUA_REGISTRYINDEX);

    static const luaL_Reg funcs[] = {
        { "type", l_type },
        { "object", l_object },
        { "array", l_array },
        { "duration_ms", l_duration_ms },
        { "parse_time", l_parse_time },
        { "format_time", l_format_time },
        { "encode_json", l_encode_json },
        { "decode_json", l_decode_json },
        { "_add_warnings", l_add_warnings },
        { NULL, NULL },
    };
    luaL_setfuncs(L, funcs, 0);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    lua_pushlightuserdata(L, &OBJECT_MT_KEY);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setfield(L, -2, "object_mt");
    lua_pushlightuserdata(L, &ARRAY_MT_KEY);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setfield(L, -2, "array_mt");
    lua_pushliteral(L, ITD_VERSION);
    lua_setfield(L, -2, "_VERSION");

    for (const itd_schema *const *s = itd_schemas; *s; s++) {
        lua_createtable(L, 0, 4);
        lua_pushlightuserdata(L, (void *)*s);
        lua_pushcclosure(L, t_new, 1);
        lua_setfield(L, -2, "new");
        lua_pushlightuserdata(L, (void *)*s);
        lua_pushcclosure(L, t_decode, 1);
        lua_setfield(L, -2, "decode");
        lua_pushlightuserdata(L, (void *)*s);
        lua_pushcclosure(L, t_is, 1);
        lua_setfield(L, -2, "is");
        lua_pushstring(L, (*s)->name);
        lua_setfield(L, -2, "name");
        lua_setfield(L, -2, (*s)->name);
    }
}
