/* A fixture: dialect/ includes config/ and common/ (down). */
#include "config/config.h"
#include "common/buf.h"
