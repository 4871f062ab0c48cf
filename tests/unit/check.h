/* A tiny unit-test harness: CHECK_* print both values on failure and count; main() calls
 * each test with RUN() and ends with `return check_summary();`, which prints the
 * "N passed, N failed" line the runners read. */
#ifndef MDL_CHECK_H
#define MDL_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed, check_current_failed;

#define CHECK_FAIL_(fmt, ...)                                                                      \
    do {                                                                                           \
        fprintf(stderr, "  %s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__);                    \
        check_current_failed = 1;                                                                  \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            CHECK_FAIL_("CHECK(%s) failed", #cond);                                                \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            CHECK_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_);                                 \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            CHECK_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)",                  \
                        b_ ? b_ : "(null)");                                                       \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol)))                                                             \
            CHECK_FAIL_("%s ~= %s: %.17g != %.17g (tol %g)", #a, #b, a_, b_, (double)(tol));       \
    } while (0)

#define RUN(test)                                                                                  \
    do {                                                                                           \
        check_current_failed = 0;                                                                  \
        test();                                                                                    \
        if (check_current_failed) {                                                                \
            check_failed++;                                                                        \
            fprintf(stderr, "FAIL %s\n", #test);                                                   \
        } else {                                                                                   \
            check_passed++;                                                                        \
        }                                                                                          \
    } while (0)

static inline int check_summary_(const char *file)
{
    const char *base = strrchr(file, '/');
    printf("%s: %d passed, %d failed\n", base ? base + 1 : file, check_passed, check_failed);
    return check_failed ? 1 : 0;
}
#define check_summary() check_summary_(__FILE__)

#endif
