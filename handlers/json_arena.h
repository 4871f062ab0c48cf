/* cJSON allocation hooks with a bump arena for request bodies: parsing a request makes
 * one node per value, and malloc+free per node was a fifth of a small predict's cost.
 * Trees parsed inside mdl_json_arena_begin/end come from the arena; cJSON_Delete on them
 * is free. Everything else (printing, other threads) uses malloc as usual. */
#ifndef MDL_JSON_ARENA_H
#define MDL_JSON_ARENA_H

/* Installs the hooks; call once at startup before any cJSON use. */
void mdl_json_arena_install(void);

/* Loop thread: the allocations between begin and end come from the arena when it is
 * free (every tree from its previous use deleted) and fit; otherwise from malloc. */
void mdl_json_arena_begin(void);
void mdl_json_arena_end(void);

#endif
