/* A fixture for scripts/check-layers.sh (tests/integration/check-layers.test.mjs): includes nothing of gyre's. */
#include <stddef.h>
