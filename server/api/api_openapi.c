#include "api_openapi.h"

#include <stdlib.h>
#include <string.h>

/* $(BUILD)/gen/openapi.c */
extern const char openapi_yaml[];
extern const size_t openapi_yaml_len;

void
api_openapi(api_req *r)
{
    char *text = malloc(openapi_yaml_len);
    if (text == NULL) {
        api_error(r, 500, "internal", "out of memory");
        return;
    }
    memcpy(text, openapi_yaml, openapi_yaml_len);
    /* RFC 9512's media type for YAML. */
    api_reply_text(r, 200, "application/yaml", text, openapi_yaml_len);
}
