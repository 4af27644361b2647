/* A fixture: otlp/ includes config/ (down). */
#include "config/config.h"
