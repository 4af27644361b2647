/* A fixture: main.c includes the server. */
#include "server/server.h"
