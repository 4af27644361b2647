/* A fixture: config/ includes common/ (down) and a header beside it. */
#include "common/buf.h"
#include "config.h"
