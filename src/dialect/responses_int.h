/* Small JSON readers shared by responses.c and responses_request.c (the Responses client dialect). */
#ifndef GYRE_DIALECT_RESPONSES_INT_H
#define GYRE_DIALECT_RESPONSES_INT_H

#include <cjson/cJSON.h>
#include <string.h>

static inline const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static inline const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static inline int str_is(const char *s, const char *lit)
{
    return s != NULL && strcmp(s, lit) == 0;
}

#endif
