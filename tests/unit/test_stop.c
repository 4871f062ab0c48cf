/* Stop strings over text that arrives in pieces: what is released when, and the cut. */
#include <stdlib.h>

#include "models/transformer/stop.h"
#include "check.h"

/* Feeds pieces one by one, concatenating what is released; returns the feed call index at
 * which a stop matched (or -1) and the released text in out. */
static int run(const char *const *stops, size_t n_stops, const char *const *pieces, char *out)
{
    mdl_stop_t m;
    int hit = -1;
    const char *p;
    size_t n;

    mdl_stop_init(&m, stops, n_stops);
    out[0] = '\0';
    for (int i = 0; pieces[i]; i++) {
        int r = mdl_stop_feed(&m, pieces[i], strlen(pieces[i]), &p, &n);
        CHECK(r >= 0);
        strncat(out, p, n);
        if (r == 1 && hit < 0)
            hit = i;
    }
    mdl_stop_flush(&m, &p, &n);
    strncat(out, p, n);
    mdl_stop_done(&m);
    return hit;
}

static void test_stop_across_pieces(void)
{
    const char *stops[] = {"\n\nAnd"};
    const char *pieces[] = {"In the beginning", "\n", "\nA", "nd God", " said", NULL};
    char out[256];
    CHECK_EQ_INT(run(stops, 1, pieces, out), 3);
    CHECK_EQ_STR(out, "In the beginning");
}

static void test_false_start_is_released(void)
{
    const char *stops[] = {"END"};
    const char *pieces[] = {"THE E", "N", "D", NULL};
    char out[256];
    CHECK_EQ_INT(run(stops, 1, pieces, out), 2);
    CHECK_EQ_STR(out, "THE ");
    const char *pieces2[] = {"THE E", "N", "DING", NULL};
    CHECK_EQ_INT(run(stops, 1, pieces2, out), 2);
    CHECK_EQ_STR(out, "THE ");
    const char *pieces3[] = {"THE EN", "TRY", NULL};
    CHECK_EQ_INT(run(stops, 1, pieces3, out), -1);
    CHECK_EQ_STR(out, "THE ENTRY");
}

static void test_held_tail_released_at_flush(void)
{
    const char *stops[] = {"<|im_end|>"};
    const char *pieces[] = {"Amen", "<|im", NULL};
    char out[256];
    mdl_stop_t m;
    const char *p;
    size_t n;

    CHECK_EQ_INT(run(stops, 1, pieces, out), -1);
    CHECK_EQ_STR(out, "Amen<|im");
    /* Nothing of a possible start is shown before it is decided. */
    mdl_stop_init(&m, stops, 1);
    CHECK_EQ_INT(mdl_stop_feed(&m, "Amen<|i", 7, &p, &n), 0);
    CHECK_EQ_INT(n, 4);
    CHECK(memcmp(p, "Amen", 4) == 0);
    mdl_stop_done(&m);
}

static void test_earliest_of_several(void)
{
    const char *stops[] = {"cd", "bcx", "b"};
    const char *pieces[] = {"abcd", NULL};
    char out[256];
    CHECK_EQ_INT(run(stops, 3, pieces, out), 0);
    CHECK_EQ_STR(out, "a");
}

static void test_no_stops_passes_through(void)
{
    const char *pieces[] = {"a", "b", NULL};
    char out[256];
    CHECK_EQ_INT(run(NULL, 0, pieces, out), -1);
    CHECK_EQ_STR(out, "ab");
}

static void test_nothing_after_a_match(void)
{
    const char *stops[] = {"."};
    const char *pieces[] = {"Jesus wept. And", " more", NULL};
    char out[256];
    CHECK_EQ_INT(run(stops, 1, pieces, out), 0);
    CHECK_EQ_STR(out, "Jesus wept");
}

int main(void)
{
    RUN(test_stop_across_pieces);
    RUN(test_false_start_is_released);
    RUN(test_held_tail_released_at_flush);
    RUN(test_earliest_of_several);
    RUN(test_no_stops_passes_through);
    RUN(test_nothing_after_a_match);
    return check_summary();
}
