/* What a model name and a version folder name may be. One definition for the repository
 * scanner (folder names), the router (names in URLs) and handlers that take a model name
 * from a body (OpenAI routes), so a name accepted in one place is accepted in all. Pure. */
#ifndef MDL_NAMES_H
#define MDL_NAMES_H

#include <stdbool.h>

#define MDL_NAME_MAX 64

/* 1 to MDL_NAME_MAX characters of [A-Za-z0-9._-], not starting with '.' (no ".", "..",
 * or hidden folders). */
bool mdl_name_valid(const char *s);

/* A version folder name: 1 to 18 decimal digits (fits a long). Returns the number, or -1. */
long mdl_version_parse(const char *s);

#endif
