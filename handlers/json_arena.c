#include "json_arena.h"

#include <cjson/cJSON.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#define ARENA_BYTES (256 * 1024)

static alignas(max_align_t) unsigned char arena[ARENA_BYTES];
static size_t arena_used;   /* bump offset */
static size_t arena_live;   /* allocations not yet freed; the arena resets at zero */
static _Thread_local bool arena_active;

static bool in_arena(const void *p)
{
    return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + ARENA_BYTES;
}

static void *hook_malloc(size_t n)
{
    if (arena_active) {
        size_t size = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
        if (size <= ARENA_BYTES - arena_used) {
            void *p = arena + arena_used;
            arena_used += size;
            arena_live++;
            return p;
        }
    }
    return malloc(n);
}

static void hook_free(void *p)
{
    if (in_arena(p)) {
        if (--arena_live == 0)
            arena_used = 0;
        return;
    }
    free(p);
}

void mdl_json_arena_install(void)
{
    cJSON_Hooks hooks = {hook_malloc, hook_free};
    cJSON_InitHooks(&hooks);
}

void mdl_json_arena_begin(void)
{
    arena_active = true;
}

void mdl_json_arena_end(void)
{
    arena_active = false;
}
