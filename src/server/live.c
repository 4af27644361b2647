/* Live changes (live.h).  Not built yet: every reload is refused. */
#include "server/live.h"

#include <errno.h>
#include <stdio.h>

int gyre_live_reload(gyre_server_t *s, const char *actor, const char *what, char *err, size_t errlen)
{
    (void)s;
    (void)actor;
    (void)what;
    snprintf(err, errlen, "reloading the configuration is not supported yet");
    return -ENOTSUP;
}
