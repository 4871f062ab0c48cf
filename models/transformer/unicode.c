/* Code point classification over the generated range tables (see unicode.h). */
#include "unicode.h"

#include <stdbool.h>

static bool in_table(const mdl_unicode_range_t *t, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < t[mid].first)
            hi = mid;
        else if (cp > t[mid].last)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

static mdl_uclass_t lookup(uint32_t cp)
{
    if (in_table(mdl_unicode_letter, mdl_unicode_letter_n, cp))
        return MDL_UCLASS_LETTER;
    if (in_table(mdl_unicode_number, mdl_unicode_number_n, cp))
        return MDL_UCLASS_NUMBER;
    if (in_table(mdl_unicode_space, mdl_unicode_space_n, cp))
        return MDL_UCLASS_SPACE;
    return MDL_UCLASS_OTHER;
}

mdl_uclass_t mdl_unicode_class(uint32_t cp)
{
    if (cp < 256)
        return (mdl_uclass_t)mdl_unicode_latin1[cp];
    return lookup(cp);
}
